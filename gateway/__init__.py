"""The API gateway: one base URL in front of every service."""
