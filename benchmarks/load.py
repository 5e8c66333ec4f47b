"""Load for `steward serve`: seeded RunEvents, clients that post them, the server itself.

Shared by the soak benchmark (`bench_soak`), the ingest benchmark and the slow
tests (load, crash safety):

- `World`: a seeded generator of small, realistic RunEvents: START + COMPLETE
  pairs of a hundred jobs that read and write 1 to 3 of a few hundred
  datasets (so that runs share datasets), with small `schema` facets that
  grow a column now and then (a new dataset version);
- `LoadClient`: posts events one by one or in batches with httpx, retrying a
  503 after its `Retry-After` (as the openlineage-python HTTP transport does),
  and records in a `Tally` which events were acknowledged (a 201, or the
  per-event result of the batch endpoint), every status code and latency;
- `Server`: `steward serve` in its own process on a free loopback port, as
  deployed; stopped, or killed with SIGKILL.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import orjson

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.20.0/client/python"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SCHEMA_FACET = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"
STATS_FACET = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"
TYPES = ("integer", "bigint", "text", "varchar", "timestamp", "boolean", "numeric", "date")
NAMESPACES = ("postgres://db.internal:5432", "s3://lake-bucket", "bigquery")
START_TIME = datetime(2024, 6, 1, tzinfo=UTC)
#: Statuses of an acknowledged event: stored now, or stored before.
ACKNOWLEDGED = frozenset({"accepted", "duplicate"})


def digest(event: Any) -> str:
    """The digest steward gives an event: SHA-256 of its canonical JSON (sorted keys)."""
    return hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()


# -- events ---------------------------------------------------------------------------


class World:
    """Jobs and datasets of a seeded pipeline world; `pair(n)` is run number n.

    Every 20th dataset gains a column every `epoch_runs` runs (up to three),
    so schemas change and datasets get new versions while events flow.
    """

    def __init__(
        self, seed: int = 7, datasets: int = 300, jobs: int = 100, epoch_runs: int = 4000
    ) -> None:
        rng = random.Random(seed)
        self.seed = seed
        self.epoch_runs = epoch_runs
        self.datasets = [
            (NAMESPACES[i % len(NAMESPACES)], f"warehouse.schema_{i % 12}.table_{i}")
            for i in range(datasets)
        ]
        self.fields = [
            [{"name": f"col_{j}", "type": rng.choice(TYPES)} for j in range(rng.randint(2, 3))]
            for _ in range(datasets)
        ]
        self.jobs = []
        for j in range(jobs):
            picked = rng.sample(range(datasets), rng.randint(2, 4))
            cut = rng.randint(1, len(picked) - 1)
            self.jobs.append((f"dag_{j // 10}.task_{j}", picked[:cut], picked[cut:]))

    def run_id(self, n: int) -> str:
        """The runId of run n: a version-4 UUID, the same for the same seed and n."""
        raw = hashlib.sha256(f"{self.seed}:{n}".encode()).digest()[:16]
        return str(uuid.UUID(bytes=raw, version=4))

    def _dataset(self, i: int, n: int, output: bool, complete: bool) -> dict[str, Any]:
        fields = self.fields[i]
        if i % 20 == 0:
            extra = min(n // self.epoch_runs, 3)
            fields = fields + [{"name": f"added_{k}", "type": "text"} for k in range(extra)]
        namespace, name = self.datasets[i]
        item: dict[str, Any] = {
            "namespace": namespace,
            "name": name,
            "facets": {
                "schema": {"_producer": PRODUCER, "_schemaURL": SCHEMA_FACET, "fields": fields}
            },
        }
        if output and complete:
            item["outputFacets"] = {
                "outputStatistics": {
                    "_producer": PRODUCER,
                    "_schemaURL": STATS_FACET,
                    "rowCount": 1000 + n % 9000,
                }
            }
        return item

    def pair(self, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The START and COMPLETE events of run number n."""
        run_id = self.run_id(n)
        job, inputs, outputs = self.jobs[int(run_id[:8], 16) % len(self.jobs)]
        when = START_TIME + timedelta(seconds=n)
        events = []
        for kind, offset in (("START", 0), ("COMPLETE", 30)):
            complete = kind == "COMPLETE"
            events.append(
                {
                    "eventType": kind,
                    "eventTime": (when + timedelta(seconds=offset)).isoformat(),
                    "producer": PRODUCER,
                    "schemaURL": SCHEMA_URL,
                    "run": {"runId": run_id},
                    "job": {"namespace": "airflow-prod", "name": job},
                    "inputs": [self._dataset(i, n, False, complete) for i in inputs],
                    "outputs": [self._dataset(i, n, True, complete) for i in outputs],
                }
            )
        return events[0], events[1]

    def events(self, runs: Iterable[int]) -> Iterator[dict[str, Any]]:
        """START then COMPLETE of each run number in `runs`."""
        for n in runs:
            yield from self.pair(n)

    def client_events(self, client: int, clients: int, events: int) -> list[dict[str, Any]]:
        """The `events` events of one of `clients` clients: runs client, client + clients, ...

        Clients' runs interleave, so they all reach a schema change at about
        the same time, and never share a run.
        """
        return list(self.events(range(client, client + clients * (events // 2), clients)))

    def write_ndjson(self, path: Path, events: int) -> int:
        """Write `events` events (runs 0, 1, ...) as JSON lines; returns how many."""
        written = 0
        with path.open("wb") as out:
            for event in self.events(range(events // 2)):
                out.write(orjson.dumps(event) + b"\n")
                written += 1
        return written


def bad_body(rng: random.Random) -> tuple[bytes, int]:
    """A deliberately bad single-event body and the 4xx it must get."""
    if rng.random() < 0.5:
        return b'{"eventType": "START", "run": {"runId": ', 400  # not readable JSON
    event = {
        "eventType": "START",
        "eventTime": START_TIME.isoformat(),
        "producer": PRODUCER,
        "run": {"runId": f"not-a-uuid-{rng.getrandbits(32)}"},
        "job": {"namespace": "airflow-prod", "name": "broken"},
    }
    return orjson.dumps(event), 422


# -- clients --------------------------------------------------------------------------


@dataclass
class Tally:
    """What a client saw: events sent and acknowledged, statuses, latencies, errors."""

    #: digest -> the event (None when the client keeps no events: a long soak).
    sent: dict[str, Any] = field(default_factory=dict)
    #: digest -> "accepted" | "duplicate": the events steward said it holds.
    acked: dict[str, str] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    #: Statuses of the deliberately bad requests.
    bad: Counter[int] = field(default_factory=Counter)
    single_seconds: list[float] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)
    #: Responses that should never happen (a 5xx, a "locked" message, a wrong result).
    unexpected: list[str] = field(default_factory=list)
    #: Requests that failed to reach the server (it was down).
    transport_errors: int = 0
    retried_503: int = 0
    #: Events sent through the batch endpoint.
    batched: int = 0

    def merge(self, other: Tally) -> None:
        self.sent.update(other.sent)
        self.acked.update(other.acked)
        self.statuses.update(other.statuses)
        self.bad.update(other.bad)
        self.single_seconds.extend(other.single_seconds)
        self.batch_seconds.extend(other.batch_seconds)
        self.unexpected.extend(other.unexpected)
        self.transport_errors += other.transport_errors
        self.retried_503 += other.retried_503
        self.batched += other.batched


def merged(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total


class ServerGone(Exception):
    """The server stopped answering (it was killed) and the client was told to stop."""


class LoadClient:
    """One producer: posts events singly or in batches and keeps a `Tally`.

    A 503 is retried after its `Retry-After`, as the openlineage-python HTTP
    transport does, for up to `patience` seconds. A connection error is
    retried the same way unless `stop` is set (the server is being killed):
    then the request counts as not acknowledged and `ServerGone` is raised.
    Without `keep_events` the tally keeps only the events' digests.
    """

    def __init__(
        self,
        base: str,
        token: str | None = None,
        stop: threading.Event | None = None,
        patience: float = 120.0,
        keep_events: bool = True,
    ) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=base, headers=headers, timeout=120)
        self.stop = stop or threading.Event()
        self.patience = patience
        self.keep_events = keep_events
        self.tally = Tally()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def post_single(self, event: dict[str, Any]) -> None:
        key = digest(event)
        self.tally.sent[key] = event if self.keep_events else None
        response = self._post("/api/v1/lineage", orjson.dumps(event), self.tally.single_seconds)
        if response.status_code != 201:
            self._unexpected(response, "a valid event")
            return
        self._result(key, response.json())

    def post_batch(self, events: list[dict[str, Any]]) -> None:
        keys = [digest(e) for e in events]
        kept = events if self.keep_events else [None] * len(events)
        self.tally.sent.update(zip(keys, kept, strict=True))
        self.tally.batched += len(events)
        response = self._post(
            "/api/v1/lineage/batch", orjson.dumps(events), self.tally.batch_seconds
        )
        if response.status_code != 200:
            self._unexpected(response, "a batch of valid events")
            return
        results = response.json()["results"]
        if len(results) != len(keys):
            self.tally.unexpected.append(f"{len(results)} results for {len(keys)} events")
            return
        for key, result in zip(keys, results, strict=True):
            self._result(key, result)

    def post_bad(self, body: bytes, expected: int) -> None:
        """A deliberately bad request: it must get `expected` (a 4xx)."""
        response = self._post("/api/v1/lineage", body, [])
        self.tally.bad[response.status_code] += 1
        if response.status_code != expected:
            self._unexpected(response, f"a bad event (expected {expected})")

    def post(self, events: list[dict[str, Any]], batch_size: int) -> None:
        """Post `events`: one by one (`batch_size` 0 or 1) or in batches of `batch_size`."""
        if batch_size <= 1:
            for event in events:
                self.post_single(event)
            return
        for first in range(0, len(events), batch_size):
            self.post_batch(events[first : first + batch_size])

    def _result(self, key: str, result: dict[str, Any]) -> None:
        if result.get("digest") != key:
            self.tally.unexpected.append(f"digest {result.get('digest')} for event {key}")
        if result.get("status") in ACKNOWLEDGED:
            self.tally.acked[key] = result["status"]
        else:
            self.tally.unexpected.append(f"valid event {result.get('status')}: {result}")

    def _unexpected(self, response: httpx.Response, what: str) -> None:
        self.tally.unexpected.append(f"{response.status_code} for {what}: {response.text[:300]}")

    def _post(self, path: str, body: bytes, latencies: list[float]) -> httpx.Response:
        deadline = time.monotonic() + self.patience
        while True:
            started = time.perf_counter()
            try:
                response = self.http.post(path, content=body)
            except httpx.TransportError as err:
                self.tally.transport_errors += 1
                if self.stop.is_set():
                    raise ServerGone(str(err)) from err
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
                continue
            latencies.append(time.perf_counter() - started)
            self.tally.statuses[response.status_code] += 1
            if "locked" in response.text:
                self._unexpected(response, "any request")
            if response.status_code != 503 or time.monotonic() > deadline:
                return response
            if "Retry-After" not in response.headers:
                self._unexpected(response, "a 503 without Retry-After")
            self.tally.retried_503 += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))


def run_clients(
    base: str,
    parts: list[list[dict[str, Any]]],
    batch_sizes: list[int],
    token: str | None = None,
    stop: threading.Event | None = None,
    live: list[Tally] | None = None,
) -> list[Tally]:
    """Post each part from a client thread of its own (batch size per client); their tallies.

    `live` receives each client's tally as it starts, to watch progress. A
    client whose server is gone (`stop` set) ends early.
    """
    tallies: list[Tally] = [Tally() for _ in parts]
    failures: list[BaseException] = []

    def work(index: int) -> None:
        with LoadClient(base, token, stop) as client:
            if live is not None:
                live.append(client.tally)
            try:
                client.post(parts[index], batch_sizes[index])
            except ServerGone:
                pass
            except BaseException as err:  # reported to the caller
                failures.append(err)
            tallies[index] = client.tally

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(parts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return tallies


# -- the server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`steward serve` in its own process, on a loopback port (free unless given).

    `log` gets its stdout and stderr (else they are inherited); `token` is
    passed as `STEWARD_TOKEN`. Use as a context manager, or `start()` and
    `stop()` / `kill()`; `start()` again restarts it on the same port.
    """

    def __init__(
        self,
        catalog_url: str,
        *,
        token: str | None = None,
        max_body: str | None = "50MB",
        port: int | None = None,
        log: Path | None = None,
        args: tuple[str, ...] = (),
        root: tuple[str, ...] = ("-q",),
        env: dict[str, str] | None = None,
    ) -> None:
        """`args` go after `serve` (no `--host`: the server's default), `root`
        before `--catalog` (options of `steward` itself), `env` into its
        environment."""
        self.catalog_url = catalog_url
        self.token = token
        self.max_body = max_body
        self.port = port or free_port()
        self.log = log
        self.args = args
        self.root = root
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        """Start the server and wait until `/health` answers."""
        env = {**os.environ}
        env.pop("STEWARD_TOKEN", None)
        env.update(self.env)
        if self.token:
            env["STEWARD_TOKEN"] = self.token
        steward = str(Path(sys.executable).parent / "steward")
        command = [steward, *self.root, "--catalog", self.catalog_url, "serve"]
        command += ["--port", str(self.port), *self.args]
        if self.max_body is not None:
            command += ["--max-body", self.max_body]
        if self.log is not None:
            self._log_file = self.log.open("ab")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log_file, stderr=subprocess.STDOUT if self.log else None
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                shown = self.log.read_text(errors="replace")[-4000:] if self.log else ""
                raise RuntimeError(f"steward serve did not start\n{shown}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop it as an operator does (SIGTERM), and wait."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill it outright (SIGKILL: no shutdown, no flush), and wait."""
        self._end(signal.SIGKILL)

    def _end(self, sig: signal.Signals) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- figures --------------------------------------------------------------------------


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max in milliseconds (empty: zeros)."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] * 1000}


# -- what the catalog holds -----------------------------------------------------------


def stored_digests(catalog_url: str, status: str = "accepted") -> Counter[str]:
    """How many times each digest is in the catalog's raw log with `status`."""
    from sqlalchemy import text

    from catalog.db import Store

    store = Store(catalog_url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT digest FROM raw_event WHERE status = :status"), {"status": status}
            )
            return Counter(row.digest for row in rows)
    finally:
        store.dispose()
