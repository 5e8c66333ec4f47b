"""`steward serve` as a real subprocess on a free loopback port, for the tests that need one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from starlette.routing import Route

from benchmarks.load import Server, free_port

STEWARD = str(Path(sys.executable).with_name("steward"))

__all__ = ["STEWARD", "Served", "free_port", "routes_of", "steward_serve"]


def routes_of(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route: those of the OpenAPI document (included
    routers too) and those kept out of it (the report, the document itself)."""
    out = {
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method in item
        if method.upper() in {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}
    }
    for route in app.routes:
        if isinstance(route, Route):
            out |= {(m, route.path) for m in route.methods or ()}
    return out


@dataclass(frozen=True)
class Served:
    """A running `steward serve`: its URL, process and combined stdout/stderr log."""

    base: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextmanager
def steward_serve(
    catalog_url: str,
    log: Path,
    *args: str,
    token: str | None = None,
    root: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """Run `steward ROOT --catalog URL serve --port P ARGS` until the block ends.

    `root` are options of `steward` itself (`-vv`). Without `--host` in
    `args` the server picks its default. `STEWARD_TOKEN` is `token` (unset
    when None), whatever the calling environment says.
    """
    server = Server(catalog_url, token=token, max_body=None, log=log, args=args, root=root, env=env)
    with server:
        assert server.process is not None
        yield Served(server.base, server.port, server.process, log)
