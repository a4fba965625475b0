"""Model downloads from a Hugging Face-style hub (or any URL): resumable, verified, cancellable.

A download is written to `NAME.gguf.part` beside its final place; the registry lists only `*.gguf`, so a model
appears once it is complete and its sha256 matches the hub's metadata (or `--sha256`). Cancelling keeps the
part: the next pull of the same file resumes with an HTTP Range request.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class PullTarget:
    url: str
    filename: str
    sha256: str | None
    size: int | None


def hub_url() -> str:
    """The hub to use: PONDER_HUB (a mirror) or Hugging Face."""
    return os.environ.get("PONDER_HUB", DEFAULT_HUB).rstrip("/")


class _NoAuthAcrossHosts(urllib.request.HTTPRedirectHandler):
    """Hubs redirect downloads to a CDN: the hub token must not follow the request to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_opener = urllib.request.build_opener(_NoAuthAcrossHosts)


def _open(url: str, token: str | None, headers: dict | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": "Ponder", **(headers or {})})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        return _opener.open(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise ModelError(f"The hub refused {url} ({e.code}): the model may be gated; accept its licence on "
                             "the hub and save a token with `ponder models token`.") from None
        if e.code == 404:
            raise ModelError(f"Not found on the hub: {url}.") from None
        raise
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ModelError(f"Cannot reach {urllib.parse.urlsplit(url).netloc} ({reason}); check the connection "
                         "or the hub address (PONDER_HUB).") from None


def resolve(ref: str, hub: str | None = None, token: str | None = None, sha256: str | None = None) -> PullTarget:
    """REPO/FILE on the hub (size and sha256 from its metadata), or a plain URL (sha256 only if given)."""
    if ref.startswith(("http://", "https://")):
        name = Path(urllib.parse.urlsplit(ref).path).name
        if not name.endswith(".gguf"):
            raise ModelError(f"{ref} does not name a .gguf file.")
        return PullTarget(ref, name, sha256, None)
    parts = ref.strip("/").split("/")
    if len(parts) < 3 or not parts[-1].endswith(".gguf"):
        raise ModelError(f"'{ref}' is not REPO/FILE.gguf (for example unsloth/Qwen3-0.6B-GGUF/"
                         "Qwen3-0.6B-Q4_K_M.gguf) or a URL.")
    hub = (hub or hub_url()).rstrip("/")
    repo, path = "/".join(parts[:2]), "/".join(parts[2:])
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    tree_url = f"{hub}/api/models/{repo}/tree/main" + (f"/{urllib.parse.quote(folder)}" if folder else "")
    with _open(tree_url, token) as response:
        try:
            listing = json.loads(response.read())
        except ValueError:
            raise ModelError(f"The hub's file list for {repo} is not JSON; is {hub} a Hugging Face-style hub?") \
                from None
    entry = next((e for e in listing if isinstance(e, dict) and e.get("path") == path), None)
    if entry is None:
        raise ModelError(f"{repo} has no file {path}.")
    lfs = entry.get("lfs") or {}
    return PullTarget(f"{hub}/{repo}/resolve/main/{urllib.parse.quote(path)}", Path(path).name,
                      sha256 or lfs.get("oid"), lfs.get("size") or entry.get("size"))


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
    """Download REPO/FILE from the hub (or a URL) into the models folder, with the hub token from the keychain;
    returns the verified file."""
    token = get_secret(HUB_TOKEN)
    return download(resolve(ref, token=token, sha256=sha256), models_dir(), token, on_progress, is_cancelled)


def download(target: PullTarget, folder: Path, token: str | None = None,
             on_progress: Callable[[Progress], None] | None = None,
             is_cancelled: Callable[[], bool] | None = None) -> Path:
    """Fetch `target` into `folder`, resuming a part left by an earlier try; returns the verified file."""
    progress = on_progress or (lambda _p: None)
    cancelled = is_cancelled or (lambda: False)
    folder.mkdir(parents=True, exist_ok=True)
    final, part = folder / target.filename, folder / (target.filename + ".part")
    if final.exists():
        raise ModelError(f"{final.name} is already in the models folder.")
    offset = part.stat().st_size if part.exists() else 0
    if target.size is not None and offset > target.size:
        part.unlink()
        offset = 0
    needed = (target.size or 0) - offset
    free = shutil.disk_usage(folder).free
    if target.size is not None and free - needed < DISK_MARGIN:
        raise ModelError(f"Not enough disk space for {target.filename}: it needs {needed / 1e9:.1f} GB more and "
                         f"{free / 1e9:.1f} GB are free in {folder}.")
    digest = hashlib.sha256()
    if offset:
        _hash_existing(part, digest, cancelled)
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    done = offset
    try:
        with _open(target.url, token, headers) as response:
            if offset and response.status != 206:  # the server ignored Range: start again
                digest, done = hashlib.sha256(), 0
            total = target.size or (done + int(response.headers.get("Content-Length", 0) or 0))
            with open(part, "ab" if done else "wb") as out:
                while True:
                    if cancelled():
                        raise Cancelled("The download was paused; pull it again to resume.")
                    block = response.read(BLOCK)
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    done += len(block)
                    progress(Progress(done, total, f"Downloading {target.filename}"))
                out.flush()
                os.fsync(out.fileno())
    except urllib.error.HTTPError as e:
        if e.code == 416 and target.size == offset:  # the part was already complete
            pass
        else:
            raise ModelError(f"The download of {target.filename} failed: HTTP {e.code}.") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        raise ModelError(f"The download of {target.filename} was interrupted at {done / 1e6:,.0f} MB "
                         f"({getattr(e, 'reason', e)}); pull it again to resume.") from None
    if target.size is not None and done != target.size:
        raise ModelError(f"The download of {target.filename} stopped at {done:,} of {target.size:,} bytes; pull it "
                         "again to resume.")
    if target.sha256 and digest.hexdigest() != target.sha256.lower():
        part.unlink(missing_ok=True)
        raise ModelError(f"{target.filename} is damaged: its sha256 does not match the hub's, so it was deleted. "
                         "Pull it again.")
    os.replace(part, final)
    log.info("downloaded %s (%d bytes, sha256 %s)", final, done, "checked" if target.sha256 else "not given")
    return final
