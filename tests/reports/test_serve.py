"""`steward serve` serves the report live at `/`, beside the OpenLineage API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from catalog.apply import apply
from catalog.db import Store
from catalog.specs import AssetSpec, FieldSpec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    apply(
        Store(url),
        [
            AssetSpec(
                namespace="postgres://db:5432",
                name="shop.public.orders",
                kind="table",
                fields=[FieldSpec(name="id", type="int")],
            )
        ],
    )
    port, token = free_port(), "s3cret-token"
    exe = Path(sys.executable).with_name("steward")
    env = {**os.environ, "STEWARD_TOKEN": token}
    proc = subprocess.Popen(
        [str(exe), "--catalog", url, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("steward serve did not start")
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_report_is_served_live_behind_the_token(served: tuple[str, str]) -> None:
    base, token = served
    assert httpx.get(f"{base}/", timeout=30).status_code == 401
    page = httpx.get(f"{base}/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "shop.public.orders" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    missing = httpx.get(
        f"{base}/?focus=nope", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert missing.status_code == 404
