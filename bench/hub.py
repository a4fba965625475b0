"""A Hugging Face-style hub on loopback, for download tests and benchmarks, behaving as the real one does: the
revision API, tree listings with a git (sha1) `oid`, `lfs.oid` (sha256), `xetHash` and `Link` pagination,
`/resolve/` pinned to a commit (`X-Repo-Commit`, `ETag`) and optionally redirected to a CDN on another host,
errors with `X-Error-Code`/`X-Error-Message`, 429 with `Retry-After`, Range requests; and switches to cut a
download short, reset the connection, flip a byte or upload a new version."""
from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Server:
    """One loopback HTTP(S) server running `handler` on a thread."""

    def __init__(self, handler, tls: tuple[str, str] | None = None) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.server.handle_error = self._quiet  # a client that went away (a killed download) is no error here
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def _quiet(request, address) -> None:
        import sys
        import traceback

        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            traceback.print_exc()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Hub:
    def __init__(self, files: dict[str, bytes], *, cdn: bool = False, tls: tuple[str, str] | None = None,
                 page_size: int = 1000) -> None:
        self.commits: list[tuple[str, dict[str, bytes]]] = [("0" * 39 + "1", dict(files))]
        self.cut_after: int | None = None  # stop sending a file after this many bytes…
        self.cuts = 1  # …this many times
        self.reset = False  # reset the connection (RST) instead of closing it
        self.corrupt = False  # flip one byte in what is sent
        self.ignore_range = False
        self.chunk_delay = 0.0  # seconds between 64 KiB pieces: a slow link, so a kill lands mid-file
        self.busy = 0  # answer this many requests with 429
        self.retry_after = "0"
        self.gated: set[str] = set()  # repos whose files need a granted token
        self.granted: set[str] = set()  # tokens granted access to gated repos
        self.valid_tokens: set[str] | None = None  # None: any token is valid
        self.page_size = page_size
        self.requests: list[dict] = []
        self.cdn_requests: list[dict] = []
        self._tls = tls
        self.cdn = _Server(self._handler(self.cdn_requests, serve_files_only=True), tls) if cdn else None
        self.main = _Server(self._handler(self.requests), tls)
        self.url = self.main.url

    @property
    def files(self) -> dict[str, bytes]:
        return self.commits[-1][1]

    @property
    def commit(self) -> str:
        return self.commits[-1][0]

    def upload(self, key: str, data: bytes) -> str:
        """A new commit with `key` replaced; returns its sha."""
        sha = hashlib.sha1(f"{len(self.commits)}".encode()).hexdigest()
        self.commits.append((sha, {**self.files, key: data}))
        return sha

    def _files_at(self, revision: str) -> dict[str, bytes] | None:
        if revision == "main":
            return self.files
        return next((f for sha, f in self.commits if sha == revision), None)

    def _handler(self, log: list[dict], serve_files_only: bool = False):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                auth = self.headers.get("Authorization")
                log.append({"path": self.path, "range": self.headers.get("Range"), "auth": auth})
                if hub.busy:
                    hub.busy -= 1
                    return self._error(429, "", "Too many requests", {"Retry-After": hub.retry_after})
                token = auth[7:] if auth and auth.startswith("Bearer ") else None
                if token and hub.valid_tokens is not None and token not in hub.valid_tokens:
                    return self._error(401, "", INVALID_CREDENTIALS)
                path = urllib.parse.urlsplit(self.path)
                if serve_files_only:
                    sha, _, key = path.path[len("/cdn/"):].partition("/")
                    return self._send_file(hub._files_at(sha), sha, urllib.parse.unquote(key))
                if path.path.startswith("/api/models/"):
                    return self._api(path)
                if "/resolve/" in path.path:
                    repo, _, rest = path.path[1:].partition("/resolve/")
                    revision, _, name = rest.partition("/")
                    return self._resolve(repo, revision, urllib.parse.unquote(name), token)
                self._error(404, "", "Not found")

            def _error(self, code: int, error_code: str, message: str, extra: dict | None = None) -> None:
                body = json.dumps({"error": message}).encode()
                self.send_response(code)
                if error_code:
                    self.send_header("X-Error-Code", error_code)
                self.send_header("X-Error-Message", message)
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, data, extra: dict | None = None) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _repo_files(self, repo: str, revision: str):
                files = hub._files_at(revision)
                if files is None:
                    return None, self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                found = {k[len(repo) + 1:]: v for k, v in files.items() if k.startswith(repo + "/")}
                if not found:  # the hub says 401 for a missing repo too: it does not reveal private ones
                    return None, self._error(401, "RepoNotFound", "Repository not found")
                return found, None

            def _api(self, path) -> None:
                rest = path.path[len("/api/models/"):].split("/")
                repo, kind, revision = "/".join(rest[:2]), rest[2] if len(rest) > 2 else "", \
                    rest[3] if len(rest) > 3 else "main"
                found, _ = self._repo_files(repo, revision)
                if found is None:
                    return
                if kind == "revision":
                    sha = revision if revision != "main" else hub.commit
                    return self._json({"id": repo, "sha": sha})
                if kind != "tree":
                    return self._error(404, "", "Not found")
                folder = urllib.parse.unquote("/".join(rest[4:]))
                listing = [{"type": "file", "oid": git_oid(data), "size": len(data), "path": name,
                            "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134},
                            "xetHash": hashlib.sha256(b"xet" + data).hexdigest()}
                           for name, data in sorted(found.items())
                           if (name.rsplit("/", 1)[0] if "/" in name else "") == folder]
                if folder and not listing:
                    return self._error(404, "EntryNotFound", f"{folder} does not exist on \"{revision}\"")
                start = int(urllib.parse.parse_qs(path.query).get("cursor", ["0"])[0])
                page = listing[start:start + hub.page_size]
                extra = {}
                if start + hub.page_size < len(listing):
                    extra["Link"] = f'<{hub.url}{path.path}?cursor={start + hub.page_size}>; rel="next"'
                self._json(page, extra)

            def _resolve(self, repo: str, revision: str, name: str, token: str | None) -> None:
                found, _ = self._repo_files(repo, revision)
                if found is None:
                    return
                if repo in hub.gated and token not in hub.granted:
                    return self._error(401 if token is None else 403, "GatedRepo",
                                       f"Access to model {repo} is restricted.")
                if name not in found:
                    return self._error(404, "EntryNotFound", f"{name} does not exist on \"{revision}\"")
                sha = revision if revision != "main" else hub.commit
                if hub.cdn is not None:
                    self.send_response(302)
                    self.send_header("Location", f"{hub.cdn.url}/cdn/{sha}/{urllib.parse.quote(repo + '/' + name)}")
                    self.send_header("X-Repo-Commit", sha)
                    self.send_header("X-Linked-Size", str(len(found[name])))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._send_file(hub._files_at(sha), sha, f"{repo}/{name}")

            def _send_file(self, files: dict | None, sha: str, key: str) -> None:
                data = (files or {}).get(key)
                if data is None:
                    return self._error(404, "EntryNotFound", "Entry not found")
                if hub.corrupt:
                    data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                etag = f'"{hashlib.sha256(data).hexdigest()}"'
                start = 0
                wanted = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if wanted and not hub.ignore_range and (if_range is None or if_range == etag):
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(data):
                        return self._error(416, "", "Range not satisfiable")
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.send_header("X-Repo-Commit", sha)
                self.end_headers()
                if hub.cut_after is not None and hub.cuts > 0:
                    hub.cuts -= 1
                    self.wfile.write(body[:hub.cut_after])
                    self.wfile.flush()
                    if hub.reset:  # RST, as a dropped connection looks to the client
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if hub.chunk_delay:
                    for at in range(0, len(body), 1 << 16):
                        self.wfile.write(body[at:at + (1 << 16)])
                        time.sleep(hub.chunk_delay)
                    return
                self.wfile.write(body)

        return Handler

    def __enter__(self) -> "Hub":
        self.main.start()
        if self.cdn:
            self.cdn.start()
        return self

    def __exit__(self, *exc) -> None:
        self.main.stop()
        if self.cdn:
            self.cdn.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_with(path: Path, key: str = "org/tiny-GGUF/tiny.gguf", **options) -> Hub:
    return Hub({key: path.read_bytes()}, **options)


def self_signed(folder: Path, host: str = "127.0.0.1") -> tuple[str, str]:
    """A certificate for `host` signed by itself (cert.pem, key.pem), for a loopback HTTPS hub."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)
