"""`steward` commands as processes of their own, forked from one that has imported steward.

Each command is a new process, as from a shell: its own arguments,
environment, working directory, stdout and stderr, and an exit through the
interpreter (uncaught exceptions, `atexit`, threads and buffers as in any
process). It starts from a process that has only imported steward's CLI and the
modules most commands import (the store, its models, the queries; SQLAlchemy
and Alembic with them) and run nothing, so no command sees another's state.
What is saved is the interpreter's start-up and those imports: about half of a
short command's time.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

_SERVER = r"""
import json, os, sys
import catalog.db, catalog.queries, catalog.render
from catalog.cli import main

for line in sys.stdin:
    job = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the command's process, run like the `steward` script
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        for fd, path in ((0, os.devnull), (1, job["stdout"]), (2, job["stderr"])):
            opened = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_APPEND)
            os.dup2(opened, fd)
            os.close(opened)
        sys.argv = ["steward", *job["args"]]
        sys.exit(main())
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), flush=True)
"""


class Forks:
    """Runs `steward ARGS` in forked processes; a context manager (the forking process)."""

    def __init__(self) -> None:
        self._server: subprocess.Popen[str] | None = None

    def __enter__(self) -> Forks:
        self._server = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            assert self._server.stdin is not None
            self._server.stdin.close()
            self._server.wait(timeout=30)
            self._server = None

    def run(
        self,
        args: list[str],
        env: Mapping[str, str] | None = None,
        stderr: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        """`steward ARGS`: its exit code, stdout and stderr (bytes). With `stderr`, the
        standard error is appended to that file instead (and not returned)."""
        server = self._server
        assert server is not None and server.stdin is not None and server.stdout is not None
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            out.touch()
            err_path = stderr or err
            err_path.touch()
            job = {
                "args": args,
                "env": dict(os.environ if env is None else env),
                "cwd": os.getcwd(),
                "stdout": str(out),
                "stderr": str(err_path),
            }
            server.stdin.write(json.dumps(job) + "\n")
            server.stdin.flush()
            ready, _, _ = select.select([server.stdout], [], [], timeout)
            assert ready, f"steward {' '.join(args)} did not end within {timeout} s"
            code = int(server.stdout.readline())
            return subprocess.CompletedProcess(
                ["steward", *args],
                code,
                out.read_bytes(),
                b"" if stderr else err.read_bytes(),
            )
