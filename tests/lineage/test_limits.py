"""Attacks on a real `steward serve`: each meets its limit, and memory stays bounded.

One server (token set, small limits) receives in turn oversized headers,
too many header fields, slow clients (headers and bodies) beside a
`/health` that must keep answering, more connections than it allows, wide
events, and lineage reads that would amplify; its peak RSS (VmHWM) is
checked after each. A second server, without a token, must refuse what a
web page could send it (text/plain or untyped posts, foreign Host or
Origin). `steward ingest` must refuse a gzip bomb and an endless stdin in
one line. Traffic stays on 127.0.0.1 and is small: the figures are bounds,
not timings.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.lineage.test_hostile import MB, dump, event, peak_rss
from tests.serving import STEWARD, Served, steward_serve

TOKEN = "limits-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: What the whole attack may add to the server's peak RSS (it starts near 130 MB). The
#: attack's growth was measured at 130 to 162 MB; the bound says it stays bounded, not
#: growing with the attack's size (each attack is many times larger than the bound).
GROWTH_BOUND = 200 * MB
LIMITS = (
    "--max-body", "1MB",
    "--header-timeout", "2",
    "--body-timeout", "3",
    "--max-connections", "300",
    "--max-datasets", "2000",
    "--max-lineage-nodes", "1500",
    "--max-answer", "256KB",
)  # fmt: skip


def send(port: int, data: bytes, *, wait: float = 10) -> bytes:
    """Send raw bytes on a new connection; what the server answers (b"" if nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        with suppress(OSError):  # the server may close while we are still sending
            sock.sendall(data)
        try:
            return sock.recv(4096)
        except OSError:
            return b""


def streamed_header(port: int, size: int) -> bytes:
    """One header of `size` bytes, sent a megabyte at a time; the server's answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with suppress(OSError):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            for _ in range(size // MB):
                sock.sendall(b"a" * MB)
        try:
            return sock.recv(4096)
        except OSError:
            return b"(reset)"


def wide_event(tag: str, inputs: int) -> dict[str, Any]:
    value = event(tag)
    value["inputs"] = [
        {"namespace": "postgres://wide:5432", "name": f"shop.public.{tag}.t{i}"}
        for i in range(inputs)
    ]
    return value


@contextmanager
def open_connections(port: int, count: int, first: bytes) -> Iterator[list[socket.socket]]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if first:
                sock.sendall(first)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with steward_serve(
        f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "serve.log", *LIMITS, token=TOKEN
    ) as server:
        yield server


@pytest.mark.slow
def test_each_attack_meets_its_limit_and_memory_stays_bounded(served: Served) -> None:
    port = served.port
    with httpx.Client(base_url=served.base, headers=AUTH, timeout=30) as http:
        assert http.post("/api/v1/lineage", content=dump(event("warm up"))).status_code == 201
        start = peak_rss(served.pid)
        growth: dict[str, int] = {}

        # Oversized headers: four 64 MB headers, then a header too many and a long URL.
        answers = [streamed_header(port, 64 * MB) for _ in range(4)]
        assert all(a.startswith(b"HTTP/1.1 431") or a == b"(reset)" for a in answers), answers
        assert any(a.startswith(b"HTTP/1.1 431") for a in answers)
        many = b"".join(b"X-%d: 1\r\n" % i for i in range(101))
        assert send(port, b"GET /health HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n").startswith(
            b"HTTP/1.1 431"
        )
        assert send(port, b"GET /" + b"a" * 40_000 + b" HTTP/1.1\r\n\r\n").startswith(
            b"HTTP/1.1 431"
        )
        growth["oversized headers"] = peak_rss(served.pid) - start

        # Slow clients: 200 connections that send half their headers, 50 that send
        # headers and a tenth of their body. /health answers all along; after the
        # deadlines the server answers 408 and closes them.
        partial_body = (
            b"POST /api/v1/lineage HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer "
            + TOKEN.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        with (
            open_connections(port, 200, b"GET /health HTTP/1.1\r\nHost: h\r\n") as slow,
            open_connections(port, 50, partial_body) as slower,
        ):
            for _ in range(5):
                assert http.get("/health", timeout=5).json() == {"status": "ok"}
                time.sleep(0.2)
            deadline = time.monotonic() + 15
            closed = 0
            for sock in slow + slower:
                sock.settimeout(max(deadline - time.monotonic(), 0.1))
                try:
                    answer = sock.recv(100)
                except OSError:
                    continue
                closed += answer.startswith(b"HTTP/1.1 408") or answer == b""
            assert closed == len(slow) + len(slower)
        assert http.get("/health").status_code == 200
        growth["slow clients"] = peak_rss(served.pid) - start

        # One connection more than --max-connections is answered 503 and closed.
        with open_connections(port, 300, b"") as held:
            over = send(port, b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n", wait=5)
            assert over.startswith(b"HTTP/1.1 503"), over
            del held
        time.sleep(0.5)
        assert http.get("/health").status_code == 200

        # Wide events: one dataset over --max-datasets is 413; events at the limit,
        # eight at a time, are accepted.
        over_limit = http.post("/api/v1/lineage", content=dump(wide_event("over", 2001)))
        assert over_limit.status_code == 413, over_limit.text
        statuses: list[int] = []

        def post_wide(n: int) -> None:
            body = dump(wide_event(f"wide{n}", 1999))
            with httpx.Client(base_url=served.base, headers=AUTH, timeout=60) as own:
                statuses.append(own.post("/api/v1/lineage", content=body).status_code)

        threads = [threading.Thread(target=post_wide, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [201] * 16
        growth["wide events"] = peak_rss(served.pid) - start

        # Amplifying reads: the graph around a wide event's job holds 2,000 nodes and
        # 16 x 2,000 more two hops away; the answer is cut by nodes and by bytes.
        job = "job:scheduler:job wide0"
        answer = http.get("/api/v1/lineage", params={"nodeId": job, "depth": 3})
        assert answer.status_code == 200
        assert answer.json()["truncated"] is True
        # The start node is always answered, whatever its size (a job naming 2,000
        # inputs, with its latest run's 2,000 input versions, is over 256KB alone);
        # past it, no node is added beyond the limit.
        start_node = len(json.dumps(answer.json()["graph"][0]))
        assert len(answer.content) < 256 * 1024 + 64 * 1024 + start_node
        assert answer.json()["graph"][0]["id"] == job
        sizes: list[int] = []

        def read(n: int) -> None:
            with httpx.Client(base_url=served.base, headers=AUTH, timeout=60) as own:
                got = own.get("/api/v1/lineage", params={"nodeId": job, "depth": 100})
                sizes.append(len(got.content) if got.status_code == 200 else -got.status_code)

        threads = [threading.Thread(target=read, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(0 < size < 320 * 1024 + start_node for size in sizes), sizes
        growth["amplifying reads"] = peak_rss(served.pid) - start
        assert http.get("/health").status_code == 200
        weird = http.get("/api/v1/lineage", params={"nodeId": job, "depth": "\u00b2"})
        assert weird.status_code == 400, weird.text  # isdigit() says yes, int() no

        # A client that goes away mid-body: one line at most, no traceback (checked below).
        partial = partial_body.replace(b"1000", b"100000") + b" " * 5000
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(partial)

    shown = {k: f"{v / MB:.0f} MB" for k, v in growth.items()}
    print(f"peak RSS growth after each attack: {shown}")
    assert max(growth.values()) < GROWTH_BOUND, shown
    assert "Traceback" not in served.log.read_text(errors="replace")


def test_without_a_token_no_web_page_gets_in(tmp_path: Path) -> None:
    with (
        steward_serve(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "serve.log") as server,
        httpx.Client(base_url=server.base, timeout=30) as http,
    ):
        body = dump(event("from a page"))
        json_type = {"Content-Type": "application/json"}
        # What fetch(..., {mode: "no-cors"}) can send: text/plain, a form, or no type.
        for content_type in ("text/plain", "text/plain;charset=UTF-8", "multipart/form-data"):
            posted = http.post(
                "/api/v1/lineage", content=body, headers={"Content-Type": content_type}
            )
            assert posted.status_code == 415, posted.text
        assert http.post("/api/v1/lineage", content=body).status_code == 415  # no type
        # DNS rebinding: a name that is not the server's, even with the right type.
        rebound = {**json_type, "Host": "attacker.example"}
        assert http.post("/api/v1/lineage", content=body, headers=rebound).status_code == 403
        assert http.get("/", headers={"Host": "attacker.example"}).status_code == 403
        page = {**json_type, "Origin": "https://attacker.example"}
        assert http.post("/api/v1/lineage", content=body, headers=page).status_code == 403
        assert http.get("/", headers={"Host": "localhost:1"}).status_code == 200
        # A local client posting JSON (as every OpenLineage client does) gets in.
        assert http.post("/api/v1/lineage", content=body, headers=json_type).status_code == 201
        gz = {**json_type, "Content-Encoding": "gzip"}
        again = dump(event("gzipped"))
        assert (
            http.post("/api/v1/lineage", content=gzip.compress(again), headers=gz).status_code
            == 201
        )
        missing = http.get("/nothing<b>")
        assert missing.status_code == 404
        assert missing.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("token", ["", "two words", "t\u00f6ken"])
def test_a_token_that_can_never_match_is_refused_at_start(tmp_path: Path, token: str) -> None:
    done = subprocess.run(
        [STEWARD, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "serve", "--port", "1"],
        env={**os.environ, "STEWARD_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert (
        done.stderr.startswith("Error: STEWARD_TOKEN is set but") and done.stderr.count("\n") == 1
    )


@pytest.mark.parametrize("value", ["inf", "nan", "-1MB", "0", "1e400"])
def test_serve_refuses_a_size_that_is_not_one(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [STEWARD, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "serve", "--max-body", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.startswith("Error: --max-body"), done.stderr
    assert done.stderr.count("\n") == 1


#: Runs a command as its only child and writes that child's peak RSS (KiB) to a file:
#: RUSAGE_CHILDREN of the test process itself would count every earlier test's children.
_MEASURED = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[2:]).returncode\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def measured(peak: Path, *command: str) -> list[str]:
    """`command`, run so that its peak RSS lands in `peak` (see `peak_of`)."""
    return [sys.executable, "-c", _MEASURED, str(peak), *command]


def peak_of(peak: Path) -> int:
    return int(peak.read_text()) * 1024


def test_ingest_refuses_a_gzip_bomb_and_an_endless_stdin_in_one_line(tmp_path: Path) -> None:
    """A 1 GB document inflated from a 1 MB gzip file, and a stdin of zeros without
    end: each an error naming the limit, exit 2, and the reading stays small."""
    bomb = tmp_path / "bomb.json.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        chunk = b" " * MB
        out.write(b'{"eventTime": "')
        for _ in range(1024):
            out.write(chunk)
    assert bomb.stat().st_size < 2 * MB
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    done = subprocess.run(
        measured(
            tmp_path / "file.peak",
            STEWARD,
            "--catalog",
            catalog,
            "ingest",
            str(bomb),
            "--max-document",
            "16MB",
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"Error: {bomb}: a document") and done.stderr.count("\n") == 1
    with subprocess.Popen(
        measured(
            tmp_path / "stdin.peak",
            STEWARD,
            "--catalog",
            catalog,
            "ingest",
            "-",
            "--max-document",
            "16MB",
        ),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=False,
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        with suppress(BrokenPipeError):
            for _ in range(256):  # 256 MB of zeros, at most: it stops long before
                proc.stdin.write(b"\0" * MB)
        with suppress(BrokenPipeError):
            proc.stdin.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 2
    assert err.startswith("Error: -: a document") and err.count("\n") == 1, err
    # Both readers held at most about their limit (in characters) at once.
    assert peak_of(tmp_path / "file.peak") < 400 * MB
    assert peak_of(tmp_path / "stdin.peak") < 400 * MB


def test_ingest_streams_json_lines_past_the_document_limit(tmp_path: Path) -> None:
    """The limit is per document: a file of many small lines is read whole."""
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wt") as out:
        for n in range(300):
            out.write(json.dumps(event(f"line {n}")) + "\n")
    done = subprocess.run(
        [STEWARD, "--catalog", f"sqlite:///{tmp_path / 'c.db'}", "ingest", str(path),
         "--max-document", "4KB", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] == 300


def test_the_access_rules_read_headers_as_browsers_and_clients_send_them() -> None:
    from lineage.guard import bearer_matches, host_allowed, valid_token

    for host in ("127.0.0.1:5000", "localhost", "LOCALHOST:80", "[::1]:5000", "10.0.0.7"):
        assert host_allowed(host, ()), host
    for host in ("attacker.example", "127.0.0.1.nip.io:5000", "", "localhost.evil:1"):
        assert not host_allowed(host, ()), host
    assert host_allowed("steward.internal:443", ("steward.internal",))
    assert host_allowed("anything", ("*",))
    for header in (b"Bearer tok", b"bearer tok", b"BEARER  tok", b" Bearer tok "):
        assert bearer_matches(header, b"tok"), header
    for header in (b"tok", b"Basic tok", b"Bearer tok2", b"Bearer", b""):
        assert not bearer_matches(header, b"tok"), header
    assert valid_token("abc-DEF_123.~+/=") is None
    assert all(valid_token(t) for t in ("", " x", "x y", "t\u00f6k", "a\tb", "x\x7f"))
