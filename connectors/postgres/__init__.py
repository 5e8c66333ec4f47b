"""PostgreSQL: tables, views, materialized views and pgvector columns, versioned.

`connector` connects and reads, `queries` holds the catalog SQL, `mapping`
turns rows into asset specs, `nodetree` reads column lineage from views'
stored query trees.
"""

from connectors.postgres.connector import PostgresConfig, PostgresConnector

__all__ = ["PostgresConfig", "PostgresConnector"]
