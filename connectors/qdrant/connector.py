"""Reading Qdrant through qdrant-client: the connector, its config, and sampling.

Points are sampled by id: the ids are listed without payloads or vectors,
a seeded uniform sample of them is drawn, and only those points are fetched.
The client stays open after `scan()` so that `sample_vectors()` (the baseline
for the drift rule) reuses it; `close()` (or `with`) releases it.
"""

from __future__ import annotations

import logging
import os
import time
import warnings as pywarnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import numpy as np
from pydantic import Field, SecretStr, model_validator

from catalog.apply import Scope
from catalog.errors import InvalidInput, SourceUnavailable
from catalog.identity import normalize_namespace, redact_url
from catalog.profiles import DEFAULT_SAMPLE_SIZE, VectorSample, choose, sample_seed
from connectors.base import Connector, ConnectorConfig, Progress, Scan
from connectors.qdrant.mapping import KIND, collection_spec, dense_vector_dims, dense_vector_names

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

log = logging.getLogger(__name__)

API_KEY_ENV = "STEWARD_QDRANT_API_KEY"
#: Points whose payloads are read for payload statistics and provenance.
PAYLOAD_SAMPLE = 1000
#: Ids listed per scroll request on a server (local mode lists them in one call).
ID_PAGE = 10_000
#: Above this many points, ids are not listed: points are drawn by Qdrant's random sample.
MAX_LISTED_IDS = 2_000_000
#: Points fetched per `retrieve` request.
FETCH_BATCH = 500


class QdrantConfig(ConnectorConfig):
    """How to reach Qdrant, and how much to sample."""

    url: str
    api_key: SecretStr | None = None
    https: bool = False
    profile: bool = False
    sample_size: int = Field(default=DEFAULT_SAMPLE_SIZE, ge=1)
    timeout: int = Field(default=10, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _key_from_env(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("api_key") and os.environ.get(API_KEY_ENV):
            data = {**data, "api_key": os.environ[API_KEY_ENV]}
        return data

    @property
    def local_path(self) -> Path | None:
        """The storage directory of a `qdrant+local://` URL (None for a server)."""
        parts = urlsplit(self.url)
        if parts.scheme.lower() != "qdrant+local":
            return None
        if parts.netloc or not parts.path.startswith("/"):
            raise InvalidInput(
                f"{redact_url(self.url)}: local storage needs an absolute path",
                hint="qdrant+local:///ABSOLUTE/PATH (three slashes)",
            )
        return Path(parts.path)

    @property
    def namespace(self) -> str:
        path = self.local_path
        if path is not None:
            return normalize_namespace(f"qdrant+local://{path}")
        parts = urlsplit(self.url)
        hostport = parts.netloc.rpartition("@")[2]
        if not parts.hostname:
            raise InvalidInput(
                f"{redact_url(self.url)}: no host", hint="qdrant://HOST:PORT or qdrants://HOST:PORT"
            )
        return normalize_namespace(f"qdrant://{hostport}{parts.path}")

    @property
    def tls(self) -> bool:
        return self.https or urlsplit(self.url).scheme.lower() == "qdrants"


class QdrantConnector(Connector[QdrantConfig]):
    """Collections of a Qdrant server or local storage."""

    kind: ClassVar[str] = "qdrant"
    schemes: ClassVar[tuple[str, ...]] = ("qdrant", "qdrants", "qdrant+local")
    config_class: ClassVar[type[ConnectorConfig]] = QdrantConfig

    def __init__(self, config: QdrantConfig, client: QdrantClient | None = None) -> None:
        """`client`: an already open client to read instead (e.g. `QdrantClient(":memory:")`),
        owned by the caller; `config.url` then only names the namespace."""
        super().__init__(config)
        self._given = client
        self._client: QdrantClient | None = client
        #: Sorted point ids of each collection, listed once per scan.
        self._ids: dict[str, list[Any]] = {}
        self.namespace = config.namespace
        self.shown = redact_url(config.url)
        #: Seconds the last opening of the client took (local storage loads every point).
        self.open_seconds = 0.0
        #: Ids per scroll request (None: all at once in local mode, `ID_PAGE` on a server).
        self.id_page: int | None = None
        self.max_listed_ids = MAX_LISTED_IDS

    # --- the client ------------------------------------------------------------

    def _open(self) -> QdrantClient:
        if self._client is not None:
            return self._client
        try:
            from qdrant_client import QdrantClient
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise InvalidInput(
                "qdrant-client is not installed", hint="pip install 'ai-steward'"
            ) from err
        path = self.config.local_path
        if path is not None:
            if not (path / "meta.json").is_file():
                raise SourceUnavailable(
                    f"no Qdrant local storage at {path} (no meta.json there)",
                    hint="give the directory passed to QdrantClient(path=...)",
                )
            started = time.perf_counter()
            with self._errors(), pywarnings.catch_warnings():
                # "local mode is not recommended for more than 20,000 points": not ours to say
                pywarnings.simplefilter("ignore", UserWarning)
                self._client = QdrantClient(path=str(path))
            self.open_seconds = time.perf_counter() - started
            return self._client
        parts = urlsplit(self.config.url)
        if parts.password or parts.username:
            raise InvalidInput(
                f"{self.shown}: credentials do not belong in a Qdrant URL",
                hint=f"give the API key with --api-key or ${API_KEY_ENV}",
            )
        if parts.query:
            raise InvalidInput(
                f"{self.shown}: a Qdrant URL takes no query string (an api_key there "
                "would be ignored, and shown wherever the URL is)",
                hint=f"give the API key with --api-key or ${API_KEY_ENV}",
            )
        scheme = "https" if self.config.tls else "http"
        host = parts.hostname or "localhost"
        shown_host = f"[{host}]" if ":" in host else host
        key = self.config.api_key.get_secret_value() if self.config.api_key else None
        with self._errors(), pywarnings.catch_warnings():
            # "Api key is used with an insecure connection": said once, below, without noise
            pywarnings.simplefilter("ignore", UserWarning)
            self._client = QdrantClient(
                url=f"{scheme}://{shown_host}",
                port=parts.port or 6333,
                prefix=parts.path.strip("/") or None,
                api_key=key,
                https=self.config.tls,
                timeout=self.config.timeout,
                check_compatibility=False,
            )
        return self._client

    def close(self) -> None:
        """Release the client (and the lock on local storage) unless the caller owns it."""
        if self._client is not None and self._client is not self._given:
            self._client.close()
        self._client = self._given
        self._ids.clear()

    def __enter__(self) -> QdrantConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Client failures as one-line `SourceUnavailable` errors, without the API key."""
        from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

        try:
            yield
        except UnexpectedResponse as err:
            if err.status_code in (401, 403):
                raise SourceUnavailable(
                    f"Qdrant at {self.shown} refused the API key (HTTP {err.status_code})",
                    hint=f"check --api-key or ${API_KEY_ENV}",
                ) from None
            raise SourceUnavailable(
                self._scrub(
                    f"Qdrant at {self.shown} answered HTTP {err.status_code} "
                    f"{err.reason_phrase}: {err.content[:200].decode('utf-8', 'replace')}"
                )
            ) from None
        except ResponseHandlingException as err:
            raise SourceUnavailable(
                self._scrub(f"cannot reach Qdrant at {self.shown}: {err.source}"),
                hint="is the server running, and the host and port right?",
            ) from None
        except RuntimeError as err:  # local storage locked by another client
            raise SourceUnavailable(self._scrub(f"cannot open {self.shown}: {err}")) from None
        except (OSError, ValueError) as err:
            raise SourceUnavailable(
                self._scrub(f"cannot read Qdrant at {self.shown}: {err}")
            ) from None

    def _scrub(self, message: str) -> str:
        key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        return message.replace(key, "***") if key else message

    # --- scan --------------------------------------------------------------------

    def scan(self, progress: Progress | None = None) -> Scan:
        """Describe every collection; the client stays open for `sample_vectors`."""
        if self._given is None:
            self.close()
        self._ids.clear()
        client = self._open()
        warnings: list[str] = []
        with self._errors():
            names = sorted(c.name for c in client.get_collections().collections)
            aliases: dict[str, list[str]] = {}
            for alias in client.get_aliases().aliases:
                aliases.setdefault(alias.collection_name, []).append(alias.alias_name)
        specs = []
        for done, name in enumerate(names):
            if progress is not None:
                progress(done, len(names), name)
            with self._errors():
                info, payloads = self._read(client, name)
            specs.append(
                collection_spec(
                    self.namespace, name, info, payloads, sorted(aliases.get(name, [])), warnings
                )
            )
        if progress is not None:
            progress(len(names), len(names), "done")
        return Scan(
            specs=specs,
            scopes=[Scope(self.namespace, kinds=(KIND,))],
            origin=f"scan {self.namespace}",
            warnings=warnings,
        )

    def _read(self, client: QdrantClient, name: str) -> tuple[Any, list[dict[str, Any]]]:
        """A collection's info and a uniform sample of its payloads."""
        info = client.get_collection(name)
        ids = self._point_ids(client, name, info.points_count or 0)
        payloads: list[dict[str, Any]] = []
        if ids:
            chosen = choose(len(ids), PAYLOAD_SAMPLE, sample_seed(f"{self.namespace}/{name}"))
            records = client.retrieve(
                name, [ids[i] for i in chosen], with_payload=True, with_vectors=False
            )
            payloads = [dict(r.payload or {}) for r in records]
        elif (info.points_count or 0) > 0:
            payloads = [dict(p.payload or {}) for p in self._random_points(client, name, False)]
        return info, payloads

    def _point_ids(self, client: QdrantClient, name: str, count: int) -> list[Any]:
        """Every point id, sorted (ints first, then UUIDs): the frame samples are drawn from.

        Listed once per scan. Empty for collections above `MAX_LISTED_IDS` points.
        """
        if name in self._ids:
            return self._ids[name]
        if count > self.max_listed_ids:
            self._ids[name] = []
            return []
        page = self.id_page or (
            count + 1 if self.config.local_path is not None or self._given else ID_PAGE
        )
        ids: list[Any] = []
        offset: Any = None
        while True:
            records, offset = client.scroll(
                name, limit=max(page, 1), offset=offset, with_payload=False, with_vectors=False
            )
            ids.extend(r.id for r in records)
            if offset is None:
                break
        ids.sort(key=lambda i: (1, str(i), 0) if isinstance(i, str) else (0, "", i))
        self._ids[name] = ids
        return ids

    def _random_points(
        self, client: QdrantClient, name: str, vectors: bool, limit: int = PAYLOAD_SAMPLE
    ) -> list[Any]:
        from qdrant_client import models

        response = client.query_points(
            name,
            query=models.SampleQuery(sample=models.Sample.RANDOM),
            limit=limit,
            with_payload=not vectors,
            with_vectors=vectors,
        )
        return list(response.points)

    # --- sampling ----------------------------------------------------------------

    def sample_vectors(self, asset_name: str, size: int, seed: int) -> list[VectorSample]:
        """A reproducible uniform sample of each dense vector of a collection."""
        client = self._open()
        with self._errors():
            info = client.get_collection(asset_name)
            dense = dense_vector_names(info)
            if not dense:
                return []
            ids = self._point_ids(client, asset_name, info.points_count or 0)
            method = "ids"
            if ids:
                chosen = np.sort(choose(len(ids), size, seed))
                wanted = [ids[i] for i in chosen]
                records: list[Any] = []
                for start in range(0, len(wanted), FETCH_BATCH):
                    records.extend(
                        client.retrieve(
                            asset_name,
                            wanted[start : start + FETCH_BATCH],
                            with_payload=False,
                            with_vectors=[n for n in dense] if dense != [""] else True,
                        )
                    )
                population = len(ids)
            else:
                records = self._random_points(client, asset_name, True, size)
                population = info.points_count or 0
                method = "random"
        out = []
        for part, dim in dense_vector_dims(info).items():
            rows = [v for v in (_vector_of(r.vector, part) for r in records) if v is not None]
            matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
            out.append(VectorSample(part, matrix, population, seed, method))
        return out


def _vector_of(vector: Any, part: str) -> list[float] | None:
    if vector is None:
        return None
    if isinstance(vector, Mapping):
        value = vector.get(part)
        return value if isinstance(value, list) else None
    return vector if part == "" and isinstance(vector, list) else None
