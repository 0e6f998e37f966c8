"""The store: one interface (port.py), a PostgreSQL and a SQLite implementation."""
