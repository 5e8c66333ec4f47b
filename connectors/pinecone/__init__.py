"""Pinecone: every index of a project, versioned (the `pinecone` extra).

`pinecone://PROJECT` reads the project of the API key through Pinecone's
control plane (`api.pinecone.io`); `pinecone://HOST:PORT` another control
plane over TLS and `pinecone+http://HOST:PORT` one without (Pinecone Local).
The API key comes from `--api-key` or `$STEWARD_PINECONE_API_KEY` and is
never stored.

Each index is an asset of kind `collection`, described as a Qdrant collection
is, so the vector-index rules read it the same way. Provenance comes from the
integrated embedding (Pinecone's hosted model), else the index tags
`embedding_model`, `embedding_revision`, `embedding_source`, else the same
keys in the metadata of a uniform sample of records (listed by id, then
fetched); the fetched vectors are the drift rule's baseline sample.
"""

from connectors.pinecone.connector import PineconeConfig, PineconeConnector
from connectors.pinecone.mapping import index_spec

__all__ = ["PineconeConfig", "PineconeConnector", "index_spec"]
