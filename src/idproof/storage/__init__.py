"""Storage: SQLAlchemy 2 + Alembic. SQLite (WAL) embedded by default; PostgreSQL in production.

Only decision metadata is stored: never images, templates, names or document numbers.
"""

from idproof.storage.store import Store, default_url

__all__ = ["Store", "default_url"]
