"""Reading Pinecone through its official SDK: the connector, its config, and sampling.

Records are sampled by id: the ids of every namespace are listed (Pinecone's
`list`, serverless indexes only), a seeded uniform sample of them is drawn,
and only those records are fetched. The fetched records give the metadata
for provenance, and their vectors the baseline sample of the drift rule;
the clients stay open after `scan()` so that `sample_vectors()` reuses them
(and the records already fetched); `close()` (or `with`) releases them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import numpy as np
from pydantic import Field

from catalog.apply import Scope
from catalog.errors import InvalidInput, SourceUnavailable
from catalog.identity import normalize_namespace, redact_url
from catalog.profiles import VectorSample, choose, sample_seed
from connectors.base import Connector, ConnectorConfig, KeyedConfig, Progress, Scan
from connectors.pinecone.mapping import KIND, index_spec

if TYPE_CHECKING:
    from pinecone import Pinecone

API_KEY_ENV = "STEWARD_PINECONE_API_KEY"
#: Pinecone's own control plane, for `pinecone://PROJECT`.
CONTROL_PLANE = "api.pinecone.io"
#: Records whose metadata are read for provenance and metadata keys.
PAYLOAD_SAMPLE = 1000
#: Ids per `list` page (the API's largest page).
ID_PAGE = 100
#: Above this many records in an index, ids are not all listed (see `_record_ids`).
MAX_LISTED_IDS = 1_000_000
#: Ids per `fetch` request (they travel in the query string).
FETCH_BATCH = 100

Record = tuple[str, str]  # (namespace, id)


class PineconeConfig(KeyedConfig):
    """How to reach Pinecone, and how much to sample."""

    key_env: ClassVar[str] = API_KEY_ENV

    url: str
    timeout: int = Field(default=30, ge=1)

    @property
    def plain_http(self) -> bool:
        """`pinecone+http://HOST:PORT`: a control plane without TLS (Pinecone Local)."""
        return urlsplit(self.url).scheme.lower() == "pinecone+http"

    @property
    def authority(self) -> str:
        parts = urlsplit(self.url)
        if parts.username or parts.password:
            raise InvalidInput(
                f"{redact_url(self.url)}: credentials do not belong in a Pinecone URL",
                hint=f"give the API key with --api-key or ${API_KEY_ENV}",
            )
        if not parts.hostname or parts.path.strip("/"):
            raise InvalidInput(
                f"{redact_url(self.url)}: name the project or the control plane's host",
                hint="pinecone://PROJECT, pinecone://HOST:PORT or pinecone+http://HOST:PORT",
            )
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError:
            raise InvalidInput(f"{redact_url(self.url)}: the port is not a number") from None
        return parts.netloc

    @property
    def is_host(self) -> bool:
        """Whether the URL names a control plane's host, rather than a project."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        return (
            self.plain_http
            or parts.port is not None
            or "." in host
            or ":" in host
            or host == "localhost"
        )

    @property
    def control_plane(self) -> str:
        """The control plane's base URL the SDK is given."""
        authority = self.authority
        if self.plain_http:
            return f"http://{authority}"
        return f"https://{authority}" if self.is_host else f"https://{CONTROL_PLANE}"

    @property
    def namespace(self) -> str:
        """`pinecone://PROJECT`, or `pinecone://HOST:PORT` for another control plane."""
        return normalize_namespace(f"pinecone://{self.authority}")


class PineconeConnector(Connector[PineconeConfig]):
    """Indexes of a Pinecone project."""

    kind: ClassVar[str] = "pinecone"
    schemes: ClassVar[tuple[str, ...]] = ("pinecone", "pinecone+http")
    config_class: ClassVar[type[ConnectorConfig]] = PineconeConfig

    def __init__(self, config: PineconeConfig) -> None:
        super().__init__(config)
        self.namespace = config.namespace
        self.shown = redact_url(config.url)
        self._client: Pinecone | None = None
        self._indexes: dict[str, Any] = {}
        self._descriptions: dict[str, dict[str, Any]] = {}
        #: Sorted (namespace, id) of each index's records, listed once per scan.
        self._ids: dict[str, list[Record]] = {}
        #: Records fetched in this scan: (index, namespace, id) -> (values, metadata).
        self._fetched: dict[tuple[str, str, str], tuple[list[float], dict[str, Any] | None]] = {}
        self.max_listed_ids = MAX_LISTED_IDS

    # --- the clients -------------------------------------------------------------

    def _key(self) -> str:
        if self.config.api_key is None or not self.config.api_key.get_secret_value():
            raise InvalidInput(
                f"{self.shown}: no Pinecone API key",
                hint=f"give it with --api-key or ${API_KEY_ENV}",
            )
        return self.config.api_key.get_secret_value()

    def _open(self) -> Pinecone:
        if self._client is not None:
            return self._client
        try:
            from pinecone import Pinecone, RetryConfig
        except ImportError as err:
            raise InvalidInput(
                "the Pinecone SDK is not installed", hint="pip install 'ai-steward[pinecone]'"
            ) from err
        with self._errors():
            self._client = Pinecone(
                api_key=self._key(),
                host=self.config.control_plane,
                timeout=float(self.config.timeout),
                retry_config=RetryConfig(max_retries=2, max_wait=5.0),
                source_tag="steward",
            )
        return self._client

    def _index(self, name: str) -> Any:
        """The data-plane client of an index (its host from `describe_index`)."""
        if name in self._indexes:
            return self._indexes[name]
        host = (self._describe(name).get("host") or "").strip()
        if not host:
            raise SourceUnavailable(f"Pinecone index {name} at {self.shown} has no host yet")
        if self.config.plain_http and host.startswith("https://"):
            host = "http://" + host.removeprefix("https://")
        with self._errors():
            self._indexes[name] = self._open().index(host=host)
        return self._indexes[name]

    def _describe(self, name: str) -> dict[str, Any]:
        if name not in self._descriptions:
            with self._errors():
                model = self._open().describe_index(name)
            self._descriptions[name] = msgspec_json(model)
        return self._descriptions[name]

    def close(self) -> None:
        """Release the control-plane and index clients."""
        for index in self._indexes.values():
            index.close()
        if self._client is not None:
            self._client.close()
        self._client = None
        self._indexes.clear()
        self._descriptions.clear()
        self._ids.clear()
        self._fetched.clear()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """SDK failures as one-line `SourceUnavailable` errors, without the API key."""
        from pinecone import (
            ApiError,
            ForbiddenError,
            PineconeConnectionError,
            PineconeError,
            PineconeTimeoutError,
            UnauthorizedError,
        )

        try:
            yield
        except (UnauthorizedError, ForbiddenError) as err:
            raise SourceUnavailable(
                f"Pinecone at {self.shown} refused the API key (HTTP {err.status_code})",
                hint=f"check --api-key or ${API_KEY_ENV}",
            ) from None
        except ApiError as err:
            raise SourceUnavailable(
                self.config.scrub(
                    f"Pinecone at {self.shown} answered HTTP {err.status_code}: {err.message}"
                )
            ) from None
        except (PineconeConnectionError, PineconeTimeoutError) as err:
            raise SourceUnavailable(
                self.config.scrub(f"cannot reach Pinecone at {self.shown}: {_first_line(err)}"),
                hint="is the host right, and the service reachable from here?",
            ) from None
        except PineconeError as err:
            raise SourceUnavailable(
                self.config.scrub(f"cannot read Pinecone at {self.shown}: {_first_line(err)}")
            ) from None

    # --- scan --------------------------------------------------------------------

    def scan(self, progress: Progress | None = None) -> Scan:
        """Describe every index; the clients stay open for `sample_vectors`."""
        self.close()
        client = self._open()
        warnings: list[str] = []
        with self._errors():
            listed = client.list_indexes()
        for model in listed:
            described = msgspec_json(model)
            self._descriptions[described["name"]] = described
        names = sorted(self._descriptions)
        specs = []
        for done, name in enumerate(names):
            if progress is not None:
                progress(done, len(names), name)
            index = self._descriptions[name]
            stats, metadatas = self._read(name, warnings)
            specs.append(index_spec(self.namespace, index, stats, metadatas, warnings))
        if progress is not None:
            progress(len(names), len(names), "done")
        return Scan(
            specs=specs,
            scopes=[Scope(self.namespace, kinds=(KIND,))],
            origin=f"scan {self.namespace}",
            warnings=warnings,
        )

    def _read(self, name: str, warnings: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """An index's stats and the metadata of a uniform sample of its records."""
        if not (self._descriptions[name].get("status") or {}).get("ready"):
            warnings.append(f"{self.namespace}/{name}: not ready; its records were not read")
            return {}, []
        index = self._index(name)
        with self._errors():
            stats = msgspec_json(index.describe_index_stats())
        ids = self._record_ids(name, stats, warnings)
        if not ids:
            return stats, []
        # The first records of the baseline's draw (same seed and size), so that the
        # baseline taken after the scan fetches only the rest.
        draw = choose(
            len(ids), max(PAYLOAD_SAMPLE, self.config.vectors_per_sample), _seed(self, name)
        )
        chosen = draw[:PAYLOAD_SAMPLE]
        fetched = self._fetch(name, [ids[i] for i in chosen])
        return stats, [metadata or {} for _, metadata in fetched]

    def _record_ids(self, name: str, stats: dict[str, Any], warnings: list[str]) -> list[Record]:
        """Every (namespace, id) of an index, sorted: the frame samples are drawn from.

        Listed once per scan. Above `max_listed_ids` records, only as many ids
        are listed, spread over the namespaces by their record counts, and a
        warning says that the sample is uniform over those, not over all.
        """
        if name in self._ids:
            return self._ids[name]
        counts = {
            ns: int((s or {}).get("vectorCount") or 0)
            for ns, s in sorted((stats.get("namespaces") or {}).items())
        }
        total = sum(counts.values())
        budget = {ns: n for ns, n in counts.items()}
        if total > self.max_listed_ids:
            warnings.append(
                f"{self.namespace}/{name}: {total} records; ids listed for the sample: "
                f"the first {self.max_listed_ids}, spread over the namespaces"
            )
            budget = {ns: max(1, n * self.max_listed_ids // total) for ns, n in counts.items()}
        index = self._index(name)
        ids: list[Record] = []
        for ns, limit in budget.items():
            if limit == 0:
                continue
            listed, refused = self._list(index, ns, limit)
            if refused:
                warnings.append(
                    f"{self.namespace}/{name}: record ids cannot be listed ({refused}); no sample"
                    " (Pinecone lists the ids of serverless indexes only)"
                )
                self._ids[name] = []
                return []
            ids.extend((ns, i) for i in listed[:limit])
        ids.sort(key=lambda r: (r[0].encode(), r[1].encode()))
        self._ids[name] = ids
        return ids

    def _list(self, index: Any, ns: str, limit: int) -> tuple[list[str], str]:
        """Up to `limit` ids of a namespace, and why they could not be listed ('' if they were)."""
        from pinecone import ApiError, ForbiddenError, UnauthorizedError

        listed: list[str] = []
        with self._errors():
            try:
                for page in index.list(namespace=ns, limit=ID_PAGE):
                    listed.extend(item.id for item in page.vectors if item.id)
                    if len(listed) >= limit:
                        break
            except (UnauthorizedError, ForbiddenError):
                raise
            except ApiError as err:
                if 400 <= err.status_code < 500 and err.status_code != 429:
                    return [], f"HTTP {err.status_code}: {err.message}"
                raise
        return listed, ""

    def _fetch(
        self, name: str, records: list[Record]
    ) -> list[tuple[list[float], dict[str, Any] | None]]:
        """Values and metadata of `records` (in their order), fetched once per scan."""
        missing: dict[str, list[str]] = {}
        for ns, rid in records:
            if (name, ns, rid) not in self._fetched:
                missing.setdefault(ns, []).append(rid)
        index = self._index(name)
        for ns, rids in sorted(missing.items()):
            for start in range(0, len(rids), FETCH_BATCH):
                with self._errors():
                    answer = index.fetch(ids=rids[start : start + FETCH_BATCH], namespace=ns)
                for rid, vector in answer.vectors.items():
                    self._fetched[(name, ns, rid)] = (list(vector.values or []), vector.metadata)
        return [
            self._fetched[(name, ns, rid)]
            for ns, rid in records
            if (name, ns, rid) in self._fetched
        ]

    # --- sampling ----------------------------------------------------------------

    def sample_vectors(self, asset_name: str, size: int, seed: int) -> list[VectorSample]:
        """A reproducible uniform sample of a dense index's vectors, over all namespaces."""
        index = self._describe(asset_name)
        if (index.get("vector_type") or "dense") != "dense" or not index.get("dimension"):
            return []
        if asset_name not in self._ids:
            with self._errors():
                stats = msgspec_json(self._index(asset_name).describe_index_stats())
            self._record_ids(asset_name, stats, [])
        ids = self._ids.get(asset_name) or []
        if not ids:
            return []
        chosen = np.sort(choose(len(ids), size, seed))
        rows = [v for v, _ in self._fetch(asset_name, [ids[i] for i in chosen]) if v]
        dim = int(index["dimension"])
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), dim)
        return [VectorSample("", matrix, len(ids), seed, "ids")]


def _seed(connector: PineconeConnector, name: str) -> int:
    """The seed of an index's samples: the one `take_baselines` gives (by its URI)."""
    return sample_seed(f"{connector.namespace}/{name}")


def msgspec_json(model: Any) -> dict[str, Any]:
    """An SDK answer as plain JSON data with the API's keys, without unset (None) values."""
    import msgspec

    data = _without_none(msgspec.to_builtins(model))
    data.pop("responseInfo", None)
    data.pop("response_info", None)
    return dict(data)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
