"""A fake Slack on 127.0.0.1 that records what was posted.

It answers both shapes slack-sdk speaks: incoming webhooks (any path, ``ok`` as text) and
the Web API (``/api/chat.postMessage``, JSON ``{"ok": true}``). Every payload is kept in
:attr:`FakeSlack.posts` as parsed JSON (form bodies are parsed too), with its path.

    with FakeSlack() as slack:
        env = {"TICKGUARD_SLACK__WEBHOOK_URL": slack.webhook_url}
        ...
        slack.wait_for(1, timeout=30)

``fail_with`` makes it answer an HTTP error, to test that failures are counted.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8") if length else ""
        payload = _parse(body, self.headers.get("Content-Type", ""))
        with self.server.lock:
            self.server.posts.append({"path": self.path, "payload": payload})
        if self.server.fail_with:
            self._answer(self.server.fail_with, "text/plain", b"fake slack failure")
        elif self.path.startswith("/api/"):
            reply = json.dumps({"ok": True, "channel": "C0FAKE", "ts": f"{time.time():.6f}"})
            self._answer(200, "application/json", reply.encode())
        else:
            self._answer(200, "text/plain", b"ok")

    def _answer(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _parse(body: str, ctype: str) -> Any:
    if "json" in ctype:
        return json.loads(body or "{}")
    form = {k: v[0] for k, v in parse_qs(body).items()}
    for key in ("blocks", "attachments"):
        if key in form:
            form[key] = json.loads(form[key])
    return form


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.posts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.fail_with = 0


class FakeSlack:
    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def webhook_url(self) -> str:
        return self.base_url + "services/T000/B000/fake"

    @property
    def api_url(self) -> str:
        return self.base_url + "api/"

    @property
    def posts(self) -> list[dict[str, Any]]:
        with self._server.lock:
            return list(self._server.posts)

    def fail_with(self, status: int) -> None:
        self._server.fail_with = status

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Poll until ``count`` posts arrived (deadline); return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.posts) >= count:
                return self.posts
            time.sleep(0.05)
        raise AssertionError(f"expected {count} Slack posts, got {len(self.posts)}")

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
