"""Storage: SQLAlchemy 2.0 models, the queries the services need, Alembic migrations.

SQLite (WAL) in the data directory is the embedded default; PostgreSQL (psycopg 3) is the
scale-out database shared by several telephony workers. The schema is only ever created
by the migrations in ``ivr/store/migrations`` (``ivr init`` / ``ivr db upgrade``).
"""
