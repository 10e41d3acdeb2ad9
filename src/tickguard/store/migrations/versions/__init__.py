"""Alembic revisions, oldest first. Each is a frozen snapshot: never edit a released one."""
