"""The operational store: transactional state (users, keys, audit log, jobs, ...) in SQLAlchemy.

SQLite (WAL) in the data directory by default; PostgreSQL when ``GROWTHWHEEL_DATABASE_URL`` says
so. The schema is created and upgraded by Alembic migrations in ``store/migrations``.
"""
