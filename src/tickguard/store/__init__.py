"""Storage: the PostgreSQL schema, its Alembic migrations, daily partitions and the writer.

``schema`` describes the tables for readers (and for autogenerating future revisions);
``migrate`` runs the migrations shipped inside the package; ``partitions`` keeps a day
partition ready for every trading day; ``writer`` stores batches idempotently.
"""
