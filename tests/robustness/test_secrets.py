"""After using a hub token and a remote server's API key, no file Ponder wrote holds either: not the settings,
the logs (at DEBUG), the history, the index or the models folder; they live in the keychain only."""
from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import threading

from bench.disk import Words
from bench.hub import hub_with
from engine import AskOptions, HUB_TOKEN, RemoteEndpoint, RemoteEngine, save_endpoint, set_secret
from engine.chat.history import History
from engine.models.download import pull_model
from engine.paths import data_dir
from engine.rag.library import Library
from engine.settings import Settings

TOKEN = "hf_SECRETtokenABCDEF123456"
KEY = "sk-SECRETremoteKEY987654"


class _Server(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list = []

    def log_message(self, *a):
        pass

    def _send(self, body: bytes, kind: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.seen.append(self.headers.get("Authorization"))
        self._send(json.dumps({"data": [{"id": "m"}]}).encode(), "application/json")

    def do_POST(self):
        self.seen.append(self.headers.get("Authorization"))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        chunk = {"choices": [{"delta": {"content": "Blue."}, "finish_reason": None}]}
        done = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
        self._send(f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode(),
                   "text/event-stream")


def test_no_secret_anywhere_but_the_keychain(tiny_model, tmp_path, monkeypatch, memory_keyring):
    home = tmp_path / "home"
    monkeypatch.setenv("PONDER_HOME", str(home))
    handler = logging.FileHandler(tmp_path / "home-debug.log")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        set_secret(HUB_TOKEN, TOKEN)
        with hub_with(tiny_model, cdn=True) as hub:
            hub.gated, hub.granted = {"org/tiny-GGUF"}, {TOKEN}
            monkeypatch.setenv("PONDER_HUB", hub.url)
            pull_model("org/tiny-GGUF/tiny.gguf")
            assert any(r["auth"] == f"Bearer {TOKEN}" for r in hub.requests)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        endpoint = RemoteEndpoint(f"http://127.0.0.1:{server.server_address[1]}/v1")
        save_endpoint(endpoint)
        set_secret(endpoint.secret_name, KEY)
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "a.md").write_text("Kestrels hover.")
        library = Library(data_dir() / "collections.sqlite3", Words())
        library.index("docs", [str(docs)], embed=False)
        remote = RemoteEngine(endpoint, KEY, History(data_dir() / "history.sqlite3"), library)
        answer = remote.ask("What colour?", options=AskOptions(max_tokens=8))
        assert "Blue" in answer.text and f"Bearer {KEY}" in _Server.seen
        Settings(remote=endpoint.url).save()
        remote.history.close()
        library.store.close()
        server.shutdown()
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(old_level)
    written = [p for p in [*home.rglob("*"), tmp_path / "home-debug.log"] if p.is_file()]
    assert len(written) >= 5
    leaks = [str(p) for p in written for secret in (TOKEN, KEY) if secret.encode() in p.read_bytes()]
    assert leaks == []
    assert memory_keyring.get_password("Ponder", HUB_TOKEN) == TOKEN
