"""A headless Chromium driven over the DevTools protocol, with no dependency but websockets.

`Browser.load(path)` opens a file:// URL in a fresh profile and records what
a test must know: script errors (uncaught exceptions, console errors, CSP
violations), every network request, and whether `alert`/`confirm`/`prompt`
were called (they are replaced before any script of the page runs).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)
TRAP = """
window.__dialogs = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = function (msg) { window.__dialogs.push(name + ":" + String(msg)); };
}
"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Page:
    """What happened while a page loaded, and a way to ask it questions."""

    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    load_seconds: float = 0.0
    _browser: Browser | None = None

    def eval(self, expression: str) -> Any:
        assert self._browser is not None
        return self._browser.evaluate(expression)

    def screenshot(self, path: Path, width: int, height: int) -> None:
        assert self._browser is not None
        self._browser.screenshot(path, width, height)


class Browser:
    """One Chromium process with one page, closed by `close()` (or `with`)."""

    def __init__(self, executable: str | None = None, timeout: float = 60.0) -> None:
        self.executable = executable or chromium()
        if self.executable is None:
            raise RuntimeError("chromium is not installed (apt-get install chromium)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="steward-chromium-")
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            [
                self.executable,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "--window-size=1600,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self._document: str | None = None  # the page loaded last, without its fragment
        self.ws = self._connect()

    # -- plumbing ---------------------------------------------------------------

    def _port(self) -> int:
        deadline = time.monotonic() + self.timeout
        port_file = Path(self.profile) / "DevToolsActivePort"
        while time.monotonic() < deadline:
            if port_file.exists():
                lines = port_file.read_text().splitlines()
                if lines and lines[0].isdigit():
                    return int(lines[0])
            if self.process.poll() is not None:
                self.log.seek(0)
                err = self.log.read().decode("utf-8", "replace")
                raise RuntimeError(f"chromium exited: {err[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port")

    def _connect(self) -> ClientConnection:
        port = self._port()
        deadline = time.monotonic() + self.timeout
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = [t for t in json.load(r) if t.get("type") == "page"]
            if targets or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self._opened = connect(targets[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        return self._opened.__enter__()

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def _drain(self, until: str | None, seconds: float) -> bool:
        """Collect events for `seconds`, or until an event named `until` arrives."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                raw = self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            message = json.loads(raw)
            self.events.append(message)
            if until and message.get("method") == until:
                return True
        return False

    # -- what the tests use ---------------------------------------------------------

    def load(self, path: Path, settle: float = 0.5, fragment: str = "") -> Page:
        url = path.resolve().as_uri() + (f"#{fragment}" if fragment else "")
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Page.addScriptToEvaluateOnNewDocument", source=TRAP)
        self.events.clear()
        if self._document == url.split("#")[0]:
            # Another fragment of the same page is no new load: leave it first.
            self.send("Page.navigate", url="about:blank")
            self._drain("Page.loadEventFired", self.timeout)
            self.events.clear()
        self._document = url.split("#")[0]
        start = time.monotonic()
        self.send("Page.navigate", url=url)
        if not self._drain("Page.loadEventFired", self.timeout):
            raise RuntimeError(f"{url} did not finish loading")
        page = Page(url=url, load_seconds=time.monotonic() - start, _browser=self)
        self._drain(None, settle)
        self.collect(page)
        return page

    def collect(self, page: Page) -> None:
        """Sort the recorded events into errors and requests (and forget them)."""
        for message in self.events:
            method, params = message.get("method"), message.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                page.errors.append(f"exception: {text}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                args = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                page.errors.append("console: " + " ".join(args))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                page.errors.append(f"log: {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                page.requests.append(params["request"]["url"])
        self.events.clear()

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, width: int, height: int) -> None:
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self._drain(None, 0.3)
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the browser may already be gone
            self._opened.__exit__(None, None, None)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def foreign_requests(page: Page) -> list[str]:
    """Requests other than the page itself (and `data:` URLs, which are not network)."""
    own = re.sub(r"#.*$", "", page.url)
    return [u for u in page.requests if re.sub(r"#.*$", "", u) != own and not u.startswith("data:")]


def in_ci() -> bool:
    return bool(os.environ.get("CI"))
