"""Alembic environment shipped inside the package (driven by ``tickguard.store.migrate``)."""
