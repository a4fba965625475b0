"""Model downloads from a Hugging Face-style hub (or any URL): resumable, verified, cancellable.

A download is written to `NAME.gguf.part` beside its final place; the registry lists only `*.gguf`, so a model
appears once it is complete and its sha256 matches the hub's metadata (or `--sha256`). Cancelling keeps the
part: the next pull of the same file resumes with an HTTP Range request. `NAME.gguf.part.json` beside the part
says which upload the bytes came from (the repository's commit, the sha256, the server's ETag): a part from
another upload is discarded, never joined to new bytes.

How the hub behaves (read against huggingface_hub's client and the Hub's API): the tree listing gives each file's
git `oid` (sha1) and, for large files, `lfs.oid` (sha256); listings are paginated with a `Link: <…>; rel="next"`
header; `/resolve/` redirects to a CDN on another host; errors carry `X-Error-Code` (`GatedRepo`, `RepoNotFound`,
`RevisionNotFound`, `EntryNotFound`) and `X-Error-Message`; a busy hub answers 429 with `Retry-After`.
"""
from __future__ import annotations

import functools
import hashlib
import http.client
import json
import logging
import os
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from engine.errors import Cancelled, ModelError
from engine.events import Progress
from engine.paths import models_dir
from engine.secrets import HUB_TOKEN, get_secret

log = logging.getLogger(__name__)
DEFAULT_HUB = "https://huggingface.co"
BLOCK = 1 << 20
TIMEOUT_S = 30
DISK_MARGIN = 256 << 20  # keep this much free after the download
RETRIES = 4  # for a busy hub (429, 5xx) and for a connection lost mid-file
MAX_WAIT_S = 60.0  # the longest Retry-After honoured before telling the user instead
MAX_PAGES = 200  # of a tree listing (1,000 entries a page on the hub)
RETRYABLE = {429, 500, 502, 503, 504}
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"  # the hub's X-Error-Message for a bad token
_INTERRUPTIONS = (urllib.error.URLError, http.client.HTTPException, ssl.SSLError, TimeoutError, ConnectionError)


@dataclass(frozen=True, slots=True)
class PullTarget:
    url: str
    filename: str
    sha256: str | None
    size: int | None
    commit: str | None = None  # the hub commit the URL is pinned to
    auth_host: str | None = None  # the only host (netloc) the hub token may be sent to


class _Interrupted(Exception):
    """The connection broke part way through a file; resuming with Range may finish it."""


def hub_url() -> str:
    """The hub to use: PONDER_HUB (a mirror) or Hugging Face."""
    return os.environ.get("PONDER_HUB", DEFAULT_HUB).rstrip("/")


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc.lower()


def ssl_context() -> ssl.SSLContext:
    """Certificates from certifi: a frozen build's Python finds no system CA store on Fedora or macOS."""
    import certifi

    extra = os.environ.get("SSL_CERT_FILE")  # a company proxy's CA, as every other tool honours it
    return _context(certifi.where(), extra if extra and os.path.isfile(extra) else None)


@functools.lru_cache(maxsize=4)
def _context(cafile: str, extra: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile)
    if extra:
        context.load_verify_locations(cafile=extra)
    return context


class _NoAuthAcrossHosts(urllib.request.HTTPRedirectHandler):
    """Hubs redirect downloads to a CDN: the hub token must not follow the request to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _host(newurl) != _host(req.full_url):
            new.remove_header("Authorization")
        return new


def _hub_error(e: urllib.error.HTTPError, url: str, has_token: bool) -> ModelError:
    """The hub's own reason (X-Error-Code) as a sentence that says what to do."""
    code = e.headers.get("X-Error-Code", "") if e.headers else ""
    message = e.headers.get("X-Error-Message", "") if e.headers else ""
    what = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    if code == "GatedRepo":
        todo = ("the saved token's account has not been granted access yet: accept the licence on the model's "
                "page while signed in as that account") if has_token else \
            "accept its licence on the model's page, then save a token with `ponder models token`"
        return ModelError(f"This model is gated ({what}): {todo}.")
    if e.code == 401 and INVALID_CREDENTIALS.lower() in message.lower():
        return ModelError("The hub refused the saved token (expired or revoked); save a new one with "
                          "`ponder models token`, or remove it with `ponder models token --clear`.")
    if code == "RepoNotFound":
        tail = " or the saved token cannot see it" if has_token else "; if it is private, save a token with " \
            "`ponder models token`"
        return ModelError(f"No such repository on the hub ({what}): check the name{tail}.")
    if code == "RevisionNotFound":
        return ModelError(f"The hub has no such revision ({what}).")
    if code == "EntryNotFound" or e.code == 404:
        return ModelError(f"Not found on the hub: {what}; `ponder models catalog` lists files that exist.")
    if e.code in (401, 403):
        return ModelError(f"The hub refused {url} ({e.code}{': ' + message if message else ''}): the model may be "
                          "gated or private; accept its licence on the hub and save a token with "
                          "`ponder models token`.")
    if e.code in RETRYABLE:
        return ModelError(f"The hub at {_host(url)} is busy or failing (HTTP {e.code}) and still was after "
                          f"{RETRIES} tries; try again in a few minutes.")
    return ModelError(f"The hub answered HTTP {e.code} for {url}{': ' + message if message else ''}.")


def _wait_s(e: urllib.error.HTTPError, attempt: int) -> float:
    raw = e.headers.get("Retry-After", "") if e.headers else ""
    try:
        return max(0.0, float(raw))
    except ValueError:
        return min(MAX_WAIT_S, 2.0 ** attempt)  # an HTTP date or nothing: back off


def _open(url: str, token: str | None, headers: dict | None = None, auth_host: str | None = None):
    """GET `url`; the token goes only to `auth_host`; 429/5xx are retried after Retry-After; every failure is a
    ModelError saying what to do."""
    request = urllib.request.Request(url, headers={"User-Agent": "Ponder", **(headers or {})})
    sends_token = bool(token) and auth_host is not None and _host(url) == auth_host
    if sends_token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_NoAuthAcrossHosts, urllib.request.HTTPSHandler(context=ssl_context()))
    for attempt in range(RETRIES):
        try:
            return opener.open(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as e:
            wait = _wait_s(e, attempt)
            if e.code not in RETRYABLE or attempt == RETRIES - 1 or wait > MAX_WAIT_S:
                error = _hub_error(e, url, sends_token)
                error.detail = f"HTTP {e.code}"
                raise error from None
            log.info("%s answered %d; trying again in %.0f s", _host(url), e.code, wait)
            e.close()
            time.sleep(wait)
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise ModelError(f"The certificate of {_host(url)} is not trusted ({reason.verify_message}); if a "
                                 "company proxy inspects HTTPS, point SSL_CERT_FILE at its certificate.") from None
            raise ModelError(f"Cannot reach {_host(url)} ({reason}); check the connection or the hub address "
                             "(PONDER_HUB).") from None
    raise AssertionError("unreachable")


def _next_page(link: str | None) -> str | None:
    """The rel="next" URL of a Link header, as the hub paginates tree listings."""
    for part in (link or "").split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            return part[part.index("<") + 1:part.index(">")]
    return None


def _listing(url: str, token: str | None, auth_host: str, repo: str):
    """Every entry of a tree listing, page after page."""
    for _ in range(MAX_PAGES):
        with _open(url, token, auth_host=auth_host) as response:
            try:
                page = json.loads(response.read())
            except ValueError:
                raise ModelError(f"The hub's file list for {repo} is not JSON; is {auth_host} a Hugging Face-style "
                                 "hub?") from None
            link = response.headers.get("Link")
        yield from (page if isinstance(page, list) else [])
        url = _next_page(link)
        if not url:
            return
    raise ModelError(f"The file list of {repo} is longer than {MAX_PAGES} pages; name the file by URL instead.")


def _commit(hub: str, repo: str, token: str | None, auth_host: str) -> str | None:
    """The commit `main` points at now (the revision API), so every byte comes from one upload."""
    with _open(f"{hub}/api/models/{repo}/revision/main", token, auth_host=auth_host) as response:
        try:
            sha = json.loads(response.read()).get("sha")
        except (ValueError, AttributeError):
            return None
    return sha if isinstance(sha, str) and sha.isalnum() else None


def resolve(ref: str, hub: str | None = None, token: str | None = None, sha256: str | None = None) -> PullTarget:
    """REPO/FILE on the hub (size and sha256 from its metadata, pinned to the current commit), or a plain URL
    (sha256 only if given; the token only if the URL is on the hub)."""
    hub = (hub or hub_url()).rstrip("/")
    if ref.startswith(("http://", "https://")):
        name = Path(urllib.parse.unquote(urllib.parse.urlsplit(ref).path)).name
        if not name.endswith(".gguf"):
            raise ModelError(f"{ref} does not name a .gguf file.")
        return PullTarget(ref, name, sha256, None, auth_host=_host(hub))
    parts = ref.strip("/").split("/")
    if len(parts) < 3 or not parts[-1].endswith(".gguf") or any(p in ("", ".", "..") for p in parts):
        raise ModelError(f"'{ref}' is not REPO/FILE.gguf (for example unsloth/Qwen3-0.6B-GGUF/"
                         "Qwen3-0.6B-Q4_K_M.gguf) or a URL.")
    repo, path = "/".join(parts[:2]), "/".join(parts[2:])
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    auth_host = _host(hub)
    commit = _commit(hub, repo, token, auth_host)
    revision = commit or "main"
    tree_url = f"{hub}/api/models/{repo}/tree/{revision}" + (f"/{urllib.parse.quote(folder)}" if folder else "")
    entry = next((e for e in _listing(tree_url, token, auth_host, repo)
                  if isinstance(e, dict) and e.get("path") == path), None)
    if entry is None:
        raise ModelError(f"{repo} has no file {path}; file names are case-sensitive.")
    lfs = entry.get("lfs") if isinstance(entry.get("lfs"), dict) else {}
    size = lfs.get("size") or entry.get("size")
    return PullTarget(f"{hub}/{repo}/resolve/{revision}/{urllib.parse.quote(path)}", Path(path).name,
                      sha256 or lfs.get("oid"), size if isinstance(size, int) else None, commit, auth_host)


def _hash_existing(path: Path, digest, is_cancelled) -> int:
    done = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            if is_cancelled():
                raise Cancelled("The download was paused; pull it again to resume.")
            digest.update(block)
            done += len(block)
    return done


def pull_model(ref: str, sha256: str | None = None, on_progress: Callable[[Progress], None] | None = None,
               is_cancelled: Callable[[], bool] | None = None) -> Path:
    """Download REPO/FILE from the hub (or a URL) into the models folder, with the hub token from the keychain
    (sent to the hub's host only); returns the verified file."""
    token = get_secret(HUB_TOKEN)
    return download(resolve(ref, token=token, sha256=sha256), models_dir(), token, on_progress, is_cancelled)


def _identity(target: PullTarget) -> dict:
    """What says which upload a part's bytes belong to."""
    return {k: v for k, v in asdict(target).items() if k in ("url", "commit", "sha256", "size")}


def _part_offset(part: Path, meta: Path, target: PullTarget) -> tuple[int, str | None]:
    """Bytes of `part` that may be resumed (0 when it came from another upload) and the ETag they came with."""
    if not part.exists():
        meta.unlink(missing_ok=True)
        return 0, None
    try:
        kept = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = None
    same = isinstance(kept, dict) and all(kept.get(k) == v for k, v in _identity(target).items())
    size = part.stat().st_size
    if not same or (target.size is not None and size > target.size):
        log.info("discarding %s: it belongs to another upload", part.name)
        part.unlink()
        return 0, None
    return size, kept.get("etag")


def _save_meta(meta: Path, target: PullTarget, etag: str | None) -> None:
    tmp = meta.with_suffix(".tmp")
    tmp.write_text(json.dumps({**_identity(target), "etag": etag}), encoding="utf-8")
    os.replace(tmp, meta)


def download(target: PullTarget, folder: Path, token: str | None = None,
             on_progress: Callable[[Progress], None] | None = None,
             is_cancelled: Callable[[], bool] | None = None) -> Path:
    """Fetch `target` into `folder`, resuming a part left by an earlier try of the same upload (and, when the
    connection breaks, a few times on its own); returns the verified file."""
    progress = on_progress or (lambda _p: None)
    cancelled = is_cancelled or (lambda: False)
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / target.filename, folder / (target.filename + ".part")
    meta = folder / (target.filename + ".part.json")
    if final.exists():
        raise ModelError(f"{final.name} is already in the models folder.")
    offset, etag = _part_offset(part, meta, target)
    needed = (target.size or 0) - offset
    free = shutil.disk_usage(folder).free
    if target.size is not None and free - needed < DISK_MARGIN:
        raise ModelError(f"Not enough disk space for {target.filename}: it needs {needed / 1e9:.1f} GB more and "
                         f"{free / 1e9:.1f} GB are free in {folder}.")
    digest = hashlib.sha256()
    if offset:
        _hash_existing(part, digest, cancelled)
    done, reason = offset, ""
    for _ in range(RETRIES):
        try:
            done, digest, etag = _fetch(target, part, meta, token, done, digest, etag, progress, cancelled)
            break
        except _Interrupted as e:
            reason = str(e)
            log.info("the download of %s broke at %d bytes (%s); resuming", target.filename, done, reason)
            done = part.stat().st_size if part.exists() else 0
            digest = hashlib.sha256()
            if done:
                _hash_existing(part, digest, cancelled)
    else:
        raise ModelError(f"The download of {target.filename} was interrupted at {done / 1e6:,.0f} MB ({reason}) "
                         f"{RETRIES} times; pull it again to resume.")
    if target.size is not None and done != target.size:
        raise ModelError(f"The download of {target.filename} stopped at {done:,} of {target.size:,} bytes; pull it "
                         "again to resume.")
    if target.sha256 and digest.hexdigest() != target.sha256.lower():
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        raise ModelError(f"{target.filename} is damaged: its sha256 does not match the hub's, so it was deleted. "
                         "Pull it again.")
    os.replace(part, final)
    meta.unlink(missing_ok=True)
    log.info("downloaded %s (%d bytes, sha256 %s)", final, done, "checked" if target.sha256 else "not given")
    return final


def _fetch(target: PullTarget, part: Path, meta: Path, token, done: int, digest, etag, progress, cancelled):
    """One request from byte `done` on; returns (bytes in the part, digest, ETag). _Interrupted when the
    connection breaks; a changed upload starts the part again."""
    headers = {"Range": f"bytes={done}-"} if done else {}
    if done and etag:
        headers["If-Range"] = etag  # a server whose file changed sends all of the new one (200)
    try:
        response = _open(target.url, token, headers, target.auth_host)
    except ModelError as e:
        if done and target.size == done and e.detail == "HTTP 416":  # the part was already complete
            return done, digest, etag
        raise
    with response:
        new_etag = response.headers.get("ETag") or response.headers.get("X-Linked-Etag")
        commit = response.headers.get("X-Repo-Commit")
        moved = bool(target.commit and commit and commit != target.commit)
        if done and (response.status != 206 or moved or (etag and new_etag and new_etag != etag)):
            digest, done = hashlib.sha256(), 0  # Range ignored, or another upload: start again
        if moved:
            raise ModelError(f"{target.filename} changed on the hub during the download; pull it again.")
        _save_meta(meta, target, new_etag)
        length = response.headers.get("Content-Length")
        expected = done + int(length) if length and length.isdigit() else None
        total = target.size or expected or 0
        try:
            with open(part, "ab" if done else "wb") as out:
                while True:
                    if cancelled():
                        raise Cancelled("The download was paused; pull it again to resume.")
                    try:
                        block = response.read(BLOCK)
                    except _INTERRUPTIONS as e:
                        raise _Interrupted(getattr(e, "reason", None) or type(e).__name__) from None
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    progress(Progress(done, total, f"Downloading {target.filename}"))
                out.flush()
                os.fsync(out.fileno())
        except OSError as e:
            raise ModelError(f"{target.filename} could not be written to {part.parent} ({e.strerror or e}); the "
                             f"{done / 1e6:,.0f} MB so far are kept: free some space and pull it again.") from None
        if expected is not None and done < expected:
            raise _Interrupted(f"the server sent {done:,} of {expected:,} bytes")
    return done, digest, new_etag
