"""The real share server on loopback behind the testkit's proxy playing opencode's hosted
service (a wrong secret or an unknown share gets 500), and fixtures that start the library
against it. Both are the debug builds `cargo test` makes (`opencode-share-server`,
`testkit-proxy`); bindings/python/scripts/test.sh builds them when missing.
"""

import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

import opencode_share

ROOT = Path(__file__).resolve().parents[3]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
if not TARGET.is_absolute():
    TARGET = ROOT / TARGET
SERVER = TARGET / "debug" / "opencode-share-server"
PROXY = TARGET / "debug" / "testkit-proxy"


def _start(args, env=None):
    """Starts a binary that prints "listening on URL" first; returns (process, url)."""
    if not Path(args[0]).exists():
        raise RuntimeError(f"no {args[0]}: cargo build -p opencode-share-server -p testkit --bins")
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    first = [None]
    reader = threading.Thread(target=lambda: first.__setitem__(0, proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(10)
    line = first[0] or ""
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return proc, line.split()[-1]


class Service:
    """The server behind the proxy; commands to the proxy go as JSON lines on its stdin."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="opencode-share-py-")
        database = os.path.join(self.dir.name, "share.db")
        self.proxy, self.url = _start([str(PROXY), "--hosted", "--database", database])
        self.lock = threading.Lock()
        self.server, server_url = _start(
            [str(SERVER), "--listen", "127.0.0.1:0", "--database", f"sqlite://{database}?synchronous=normal",
             "--public-url", self.url, "--create-limit", "0", "--wrong-secret-limit", "0", "--rate-limit", "0"],
            # no create token (the variable would be read if set in the environment)
            {"OPENCODE_SHARE_CREATE_TOKEN": ""},
        )
        self.server.stdin.close()
        self._ask({"cmd": "upstream", "addr": server_url[len("http://"):]})
        self._down = False

    def _ask(self, command):
        with self.lock:
            self.proxy.stdin.write(json.dumps(command) + "\n")
            self.proxy.stdin.flush()
            answer = json.loads(self.proxy.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"testkit-proxy: {answer['error']}")
        return answer

    @property
    def down(self):
        return self._down

    @down.setter
    def down(self, value):
        """True: 503 to everything (an outage the library retries through); False: answered again."""
        self._ask({"cmd": "rule", "path": "/", "status": 503, "times": 10**9} if value else {"cmd": "clear"})
        self._down = value

    def data(self, session_id):
        """What the server holds for the session's share, by storage key; None without a share."""
        return self._ask({"cmd": "data", "session": session_id})["data"]

    def secret(self, session_id):
        """The secret the service answered to the session's create (the server keeps only a hash)."""
        for entry in reversed(self._ask({"cmd": "log"})["log"]):
            body, answer = entry.get("body"), entry.get("answer")
            if entry["path"] == "/share_create" and isinstance(body, dict) and body.get("sessionID") == session_id:
                return answer.get("secret") if isinstance(answer, dict) else None
        return None

    def stop(self):
        self.proxy.stdin.close()
        self.server.terminate()
        for proc in (self.proxy, self.server):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.dir.cleanup()


@pytest.fixture
def service():
    s = Service()
    yield s
    s.stop()


@pytest.fixture
def library(service):
    """The library started against the service; shut down (whatever the test did) after it."""
    opencode_share.init({"url": service.url, "retry_initial_ms": 10, "retry_max_ms": 50, "max_retries": 2})
    yield service
    try:
        opencode_share.shutdown(5000)
    except opencode_share.ShareError as e:
        assert e.code == "SHARE_ERR_NOT_INITIALIZED"
