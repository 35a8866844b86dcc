"""A share service on loopback (the legacy "v1" protocol: /share_create, /share_sync,
/share_delete) built on http.server, and fixtures that start the library against it.

It answers like opencode's hosted service: a wrong secret or an unknown share gets 500.
"""

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import opencode_share


class Service:
    def __init__(self):
        self.lock = threading.Lock()
        self.shares = {}  # session id -> {"secret": str, "data": {key: content}}
        self.requests = []  # (path, body)
        self.down = False  # answer 503 to everything (an outage the library retries through)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def data(self, session_id):
        with self.lock:
            share = self.shares.get(session_id)
            return None if share is None else dict(share["data"])

    def secret(self, session_id):
        with self.lock:
            share = self.shares.get(session_id)
            return None if share is None else share["secret"]

    def answer(self, path, body):
        with self.lock:
            self.requests.append((path, body))
            if self.down:
                return 503, {"error": "down"}
            if path == "/share_create":
                sid = body["sessionID"]
                share = self.shares.setdefault(sid, {"secret": str(uuid.uuid4()), "data": {}})
                return 200, {"url": f"{self.url}/s/{sid[-8:]}", "secret": share["secret"]}
            share = self.shares.get(body.get("sessionID"))
            if share is None or share["secret"] != body.get("secret"):
                return 500, {"error": "no such share"}
            if path == "/share_sync":
                share["data"][body["key"]] = body["content"]
                return 200, {}
            if path == "/share_delete":
                del self.shares[body["sessionID"]]
                return 200, {}
            return 404, {"error": "no such path"}

    def _handler(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                if length > 1 << 20:
                    status, answer = 413, {"error": "too large"}
                else:
                    try:
                        body = json.loads(self.rfile.read(length))
                        status, answer = service.answer(self.path, body)
                    except (ValueError, KeyError, TypeError):
                        status, answer = 400, {"error": "bad body"}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        return Handler


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
