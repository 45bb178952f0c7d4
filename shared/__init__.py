"""The platform's common library: settings, database, errors, HTTP, events, observability.

No domain logic lives here; every service builds on these pieces the same way.
"""
