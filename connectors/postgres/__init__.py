"""PostgreSQL: tables, views, materialized views and pgvector columns, versioned.

`connector` connects and reads, `queries` holds the catalog SQL, `mapping`
turns rows into asset specs, `nodetree` reads column lineage from views'
stored query trees. `layouts` recognises vector stores' tables (LangChain,
LlamaIndex, declared ones), `contents` reads what only the data says
(dimensions of unsized vector columns, logical collections), `collections`
turns that into specs, and `vectors` samples vectors for the drift rule.
"""

from connectors.postgres.connector import PostgresConfig, PostgresConnector

__all__ = ["PostgresConfig", "PostgresConnector"]
