"""Qdrant: every collection of a server (by URL) or of local storage (by path), versioned.

`qdrant://HOST:PORT` (`qdrants://` or `--https` for TLS, API key from
`--api-key` or `$STEWARD_QDRANT_API_KEY`) and `qdrant+local:///ABS/PATH`
(qdrant-client's local mode) are read by the same code through `QdrantClient`.

Per collection, the vector configuration (dense, named, multi and sparse
vectors, HNSW, quantization) and the embedding provenance are fingerprinted;
the point count, payload statistics and collection metadata are observations.
Provenance comes from the collection metadata keys `embedding_model`,
`embedding_revision`, `embedding_source`, else from the same keys in a
uniform sample of point payloads (with each model@revision's share).

Points are sampled by id: the ids are listed without payloads or vectors,
a seeded uniform sample of them is drawn, and only those points are fetched.
The client stays open after `scan()` so that `sample_vectors()` (the baseline
for the drift rule) reuses it; `close()` (or `with`) releases it.
"""

from connectors.qdrant.connector import QdrantConfig, QdrantConnector
from connectors.qdrant.mapping import collection_spec, payload_keys

__all__ = ["QdrantConfig", "QdrantConnector", "collection_spec", "payload_keys"]
