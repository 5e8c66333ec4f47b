"""Vector tables built by the RAG frameworks themselves (run in a test environment of its own).

`python rag_frameworks.py SOCKET_DIR DATABASE NPZ STEPS_JSON` connects to the
PostgreSQL at SOCKET_DIR and plays each step with the framework's own store:

- `{"framework": "langchain", "collection": C, "model": M, "rows": [A, B],
  "metadata": {...}, "pre_delete": bool}`: langchain-postgres's `PGVector`
  with collection C (its `langchain_pg_collection` / `langchain_pg_embedding`
  layout, `embedding vector` unsized as by default), adding rows A..B of the
  embeddings of model M from the NPZ with ids `C-i` (a later step with the
  same ids replaces those vectors in place, as a re-embedding does);
  `pre_delete` drops the collection first (`pre_delete_collection=True`).
- `{"framework": "llama_index", "table": T, "model": M, "rows": [A, B],
  "metadata": {...}, "dim": N}`: llama-index's `PGVectorStore` with table
  `data_T` (`embedding vector(N)`), adding the rows as nodes whose metadata is
  the given keys.

The vectors are given to the stores (`add_embeddings`, nodes with their
`embedding`), so no model runs here: the real embeddings of
tests/fixtures/embeddings stand for what the models computed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings


class Given(Embeddings):
    """The vectors are given to the store: nothing is embedded here."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise RuntimeError("the vectors are given with add_embeddings")

    def embed_query(self, text: str) -> list[float]:
        raise RuntimeError("no query is embedded here")


def langchain(url: str, step: dict[str, Any], vectors: np.ndarray) -> None:
    from langchain_postgres import PGVector

    name = step["collection"]
    store = PGVector(
        embeddings=Given(),
        collection_name=name,
        connection=f"postgresql+psycopg://{url}",
        collection_metadata=step.get("metadata"),
        pre_delete_collection=bool(step.get("pre_delete")),
        use_jsonb=True,
    )
    start, stop = step["rows"]
    store.add_embeddings(
        texts=[f"paragraph {i}" for i in range(start, stop)],
        embeddings=[[float(x) for x in v] for v in vectors[start:stop]],
        metadatas=[{"paragraph": i} for i in range(start, stop)],
        ids=[f"{name}-{i}" for i in range(start, stop)],
    )


def llama_index(url: str, step: dict[str, Any], vectors: np.ndarray) -> None:
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.postgres import PGVectorStore

    start, stop = step["rows"]
    dim = int(step.get("dim") or vectors.shape[1])
    store = PGVectorStore.from_params(
        connection_string=f"postgresql+psycopg2://{url}",
        async_connection_string=f"postgresql+asyncpg://{url}",
        table_name=step["table"],
        embed_dim=dim,
    )
    store.add(
        [
            TextNode(
                id_=f"{step['table']}-{i}",
                text=f"paragraph {i}",
                embedding=[float(x) for x in vectors[i][:dim]],
                metadata={"paragraph": i, **step.get("metadata", {})},
            )
            for i in range(start, stop)
        ]
    )


def main() -> None:
    socket_dir, database, npz, steps = sys.argv[1:5]
    url = f"postgres@/{database}?host={socket_dir}"
    with np.load(npz) as data:
        embeddings = {n: data[n].astype(np.float32) for n in data.files if data[n].ndim == 2}
    for step in json.loads(steps):
        vectors = embeddings[step["model"]]
        if step.get("dim"):
            vectors = vectors[:, : int(step["dim"])]
        {"langchain": langchain, "llama_index": llama_index}[step["framework"]](url, step, vectors)


if __name__ == "__main__":
    main()
