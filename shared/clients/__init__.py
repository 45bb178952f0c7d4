"""Typed clients of the platform's own APIs, used by services that call one another."""
