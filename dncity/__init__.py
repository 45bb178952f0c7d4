"""The ``dncity`` command: run, migrate, seed and administer the platform."""
