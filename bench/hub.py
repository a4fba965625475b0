"""A Hugging Face-style hub on loopback, for download tests and the download benchmark: the tree API with sha256 metadata, Range
requests, and switches to cut a download short or flip a byte."""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Hub:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files  # "org/repo/name.gguf" -> bytes
        self.cut_after: int | None = None  # stop sending after this many bytes (once)
        self.corrupt = False  # flip one byte in what is sent
        self.ignore_range = False
        self.requests: list[dict] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                hub.requests.append({"path": self.path, "range": self.headers.get("Range"),
                                     "auth": self.headers.get("Authorization")})
                if self.path.startswith("/api/models/"):
                    return self._tree(self.path[len("/api/models/"):])
                if "/resolve/main/" in self.path:
                    repo, name = self.path[1:].split("/resolve/main/")
                    return self._file(f"{repo}/{name}")
                self.send_error(404)

            def _tree(self, rest: str) -> None:
                repo = "/".join(rest.split("/")[:2])
                listing = [{"type": "file", "path": key[len(repo) + 1:], "size": len(data),
                            "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}}
                           for key, data in hub.files.items() if key.startswith(repo + "/")]
                if not listing:
                    return self.send_error(404)
                body = json.dumps(listing).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, key: str) -> None:
                data = hub.files.get(key)
                if data is None:
                    return self.send_error(404)
                if hub.corrupt:
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                start = 0
                wanted = self.headers.get("Range")
                if wanted and not hub.ignore_range:
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if hub.cut_after is not None:
                    body, hub.cut_after = body[:hub.cut_after], None
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Hub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_with(path: Path, key: str = "org/tiny-GGUF/tiny.gguf") -> Hub:
    return Hub({key: path.read_bytes()})
