"""Soak: `steward serve` under a steady load for a while, then what became of every event.

`steward serve` runs in its own process; N clients (threads, default 8) post
small realistic RunEvents for `--duration` seconds, each request one event
or a batch of 2 to 100 (`--batch-share`: the share of events sent in
batches), plus a small share of deliberately bad requests (`--bad-share`:
unreadable JSON, a broken runId) that must get a 4xx. A 503 is retried after
its Retry-After, as the openlineage-python client does. Then the catalog's
raw log is read back. Figures:

- events sent, acknowledged (a 201, or `accepted`/`duplicate` in the batch
  result), stored (accepted in the raw log), lost (acknowledged but not
  stored: must be 0) and stored twice (must be 0);
- responses by status code: the deliberately bad requests' 4xx apart from
  unexpected ones (a 5xx, a 503 even if retried, a connection error, a
  "locked" message, a valid event not accepted);
- latency p50/p95/p99/max of single and batch requests, and events/s.

Exits 1 if an event was lost or stored twice, or an unexpected response came.

`python -m benchmarks soak [--duration SECONDS] [--clients N] [--catalog URL]
[--batch-share F] [--bad-share F] [--seed N]`
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.load import (
    LoadClient,
    Server,
    Tally,
    World,
    bad_body,
    merged,
    percentiles,
    stored_digests,
)
from catalog.identity import redact_url

BATCH_SIZES = (2, 100)


def batch_odds(share: float, mean_size: float) -> float:
    """Chance that a request is a batch, for `share` of the events to go in batches."""
    if share >= 1:
        return 1.0
    return share / (mean_size * (1 - share) + share)


def soak_client(
    base: str,
    world: World,
    client: int,
    clients: int,
    deadline: float,
    batch_share: float,
    bad_share: float,
) -> Tally:
    """One producer posting until `deadline`: its runs are client, client + clients, ..."""
    rng = random.Random(world.seed * 1000 + client)
    events: Iterator[dict[str, Any]] = world.events(itertools.count(client, clients))
    odds = batch_odds(batch_share, sum(BATCH_SIZES) / 2)
    with LoadClient(base, keep_events=False) as producer:
        while time.monotonic() < deadline:
            if rng.random() < bad_share:
                producer.post_bad(*bad_body(rng))
            elif rng.random() < odds:
                producer.post_batch(list(itertools.islice(events, rng.randint(*BATCH_SIZES))))
            else:
                producer.post_single(next(events))
        return producer.tally


def soak(
    url: str,
    duration: float,
    clients: int,
    batch_share: float,
    bad_share: float,
    seed: int,
    log: Path,
) -> tuple[Tally, float]:
    """Run the load against a server of its own; the clients' tally and the seconds taken."""
    world = World(seed=seed)
    tallies: list[Tally] = []
    failures: list[BaseException] = []

    def work(client: int, deadline: float) -> None:
        try:
            tallies.append(
                soak_client(server.base, world, client, clients, deadline, batch_share, bad_share)
            )
        except BaseException as err:  # reported below
            failures.append(err)

    with Server(url, log=log) as server:
        start = time.perf_counter()
        deadline = time.monotonic() + duration
        threads = [threading.Thread(target=work, args=(c, deadline)) for c in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
    if failures:
        raise failures[0]
    return merged(tallies), elapsed


def _line(label: str, value: str, note: str = "") -> None:
    print(f"{label:<28} {value:>12}  {note}".rstrip(), flush=True)


def _codes(counts: Counter[int]) -> str:
    return "  ".join(f"{code}: {n:,}" for code, n in sorted(counts.items())) or "none"


def _latency(label: str, seconds: list[float], note: str) -> None:
    p = percentiles(seconds)
    figures = f"p50 {p['p50']:.1f}  p95 {p['p95']:.1f}  p99 {p['p99']:.1f}  max {p['max']:.1f}"
    print(f"{label:<28} {figures}  ({note})", flush=True)


def report(tally: Tally, stored: Counter[str], elapsed: float) -> bool:
    """Print the figures; True when nothing was lost and no response was unexpected."""
    acked = tally.acked
    kept = sum(1 for key in acked if stored[key] >= 1)
    lost = len(acked) - kept
    twice = sum(1 for key in acked if stored[key] > 1)
    good = tally.statuses - tally.bad
    bad_4xx = sum(n for code, n in tally.bad.items() if 400 <= code < 500)
    _line("events sent", f"{len(tally.sent):,}")
    _line("events acknowledged", f"{len(acked):,}", f"{len(tally.sent) - len(acked):,} not")
    _line("events stored", f"{kept:,}", "accepted in the catalog's raw log")
    _line("events lost", f"{lost:,}", "acknowledged but not stored: must be 0")
    _line("events stored twice", f"{twice:,}", "must be 0")
    _line("deliberately bad requests", f"{sum(tally.bad.values()):,}", _codes(tally.bad))
    _line("  answered 4xx", f"{bad_4xx:,}", "must be all of them")
    _line("responses to valid events", f"{sum(good.values()):,}", _codes(good))
    unexpected = len(tally.unexpected) + tally.retried_503 + tally.transport_errors
    _line("unexpected responses", f"{unexpected:,}", "must be 0")
    _line("  503 (busy, retried)", f"{tally.retried_503:,}")
    _line("  connection errors", f"{tally.transport_errors:,}")
    _line("  other", f"{len(tally.unexpected):,}", "5xx, 'locked', a valid event not accepted")
    for problem in tally.unexpected[:5]:
        print(f"    {problem}", flush=True)
    singles, batches = len(tally.single_seconds), len(tally.batch_seconds)
    _latency("single POST latency, ms", tally.single_seconds, f"{singles:,} requests")
    average = tally.batched / max(batches, 1)
    _latency(
        "batch POST latency, ms",
        tally.batch_seconds,
        f"{batches:,} requests, {average:.0f} events on average",
    )
    _line("throughput", f"{len(acked) / elapsed:,.0f}", f"events/s acknowledged in {elapsed:.0f} s")
    return lost == 0 and twice == 0 and unexpected == 0 and len(acked) == len(tally.sent)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks soak")
    parser.add_argument("--duration", type=float, default=300, help="seconds of load")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (threads)")
    parser.add_argument("--catalog", help="catalog URL (default: a new SQLite file)")
    parser.add_argument("--batch-share", type=float, default=0.5, help="events sent in batches")
    parser.add_argument("--bad-share", type=float, default=0.01, help="deliberately bad requests")
    parser.add_argument("--seed", type=int, default=7, help="seed of the events and the mix")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.catalog or f"sqlite:///{Path(tmp) / 'soak.db'}"
        log = Path(tmp) / "serve.log"
        print(
            f"{args.clients} clients for {args.duration:.0f} s against steward serve "
            f"({redact_url(args.catalog) if args.catalog else 'a new SQLite catalog'}), "
            f"{args.batch_share:.0%} of events in batches, {args.bad_share:.0%} bad requests",
            flush=True,
        )
        tally, elapsed = soak(
            url,
            args.duration,
            args.clients,
            args.batch_share,
            args.bad_share,
            args.seed,
            log,
        )
        ok = report(tally, stored_digests(url), elapsed)
        if not ok:
            print(f"server log:\n{log.read_text(errors='replace')[-3000:]}", flush=True)
            raise SystemExit("FAILED: events lost or unexpected responses")
        print("OK: nothing lost, no unexpected response", flush=True)
