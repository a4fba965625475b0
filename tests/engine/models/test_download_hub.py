"""Downloads against a fake hub that behaves as the real one does: busy answers, the hub's error codes, TLS,
a new upload while a part waits, paginated listings, a disk that fills up."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys

import pytest

from bench.hub import Hub, hub_with, self_signed
from engine import ModelError
from engine.models import download as d
from engine.models.download import RETRIES, download, resolve

REF = "org/tiny-GGUF/tiny.gguf"


def test_a_busy_hub_is_retried_after_retry_after(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        hub.busy = RETRIES - 1
        path = download(resolve(REF, hub.url), tmp_path)
    assert path.read_bytes() == tiny_model.read_bytes()


def test_a_hub_that_stays_busy_is_a_sentence(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        hub.busy = 100
        with pytest.raises(ModelError, match="busy or failing .HTTP 429.*try again in a few minutes"):
            resolve(REF, hub.url)


def test_a_long_retry_after_is_not_waited_for(tiny_model, monkeypatch):
    monkeypatch.setattr(d, "MAX_WAIT_S", 5)
    with hub_with(tiny_model) as hub:
        hub.busy, hub.retry_after = 1, "3600"
        with pytest.raises(ModelError, match="HTTP 429"):
            resolve(REF, hub.url)
        assert len(hub.requests) == 1


def test_the_hubs_error_codes_become_what_to_do(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        hub.gated = {"org/tiny-GGUF"}
        target = resolve(REF, hub.url)
        with pytest.raises(ModelError, match="gated.*accept its licence.*save a token"):
            download(target, tmp_path)
        with pytest.raises(ModelError, match="gated.*not been granted access yet"):
            download(resolve(REF, hub.url, token="t"), tmp_path, token="t")
        hub.granted = {"t"}
        assert download(resolve(REF, hub.url, token="t"), tmp_path, token="t").exists()
        hub.valid_tokens = {"t"}
        with pytest.raises(ModelError, match="refused the saved token .expired or revoked"):
            resolve(REF, hub.url, token="old")
        with pytest.raises(ModelError, match="No such repository"):
            resolve("org/nothing-GGUF/x.gguf", hub.url)
        with pytest.raises(ModelError, match="Not found on the hub"):
            resolve("org/tiny-GGUF/sub/x.gguf", hub.url)
        with pytest.raises(ModelError, match="has no file Tiny.gguf; file names are case-sensitive"):
            resolve("org/tiny-GGUF/Tiny.gguf", hub.url)


def test_https_works_with_certifis_certificates_and_an_untrusted_one_is_a_sentence(tiny_model, tmp_path,
                                                                                  monkeypatch):
    import certifi

    cert, key = self_signed(tmp_path)
    with hub_with(tiny_model, tls=(cert, key)) as hub:
        assert hub.url.startswith("https://")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(ModelError, match="certificate of 127.0.0.1.* is not trusted"):
            resolve(REF, hub.url)
        monkeypatch.setattr(certifi, "where", lambda: cert)  # as if the hub's CA were in certifi's bundle
        hub.cut_after, hub.cuts = 3000, 1  # a TLS stream cut short: resumed with Range
        path = download(resolve(REF, hub.url), tmp_path / "models")
    assert path.read_bytes() == tiny_model.read_bytes()
    assert any(r["range"] for r in hub.requests)


def test_a_part_from_an_older_upload_is_never_joined_to_the_new_one(tiny_model, tmp_path):
    old = tiny_model.read_bytes()
    new = old[:5000] + bytes(b ^ 0x55 for b in old[5000:])
    with Hub({REF: old}) as hub:
        first = resolve(REF, hub.url)
        assert first.commit == hub.commit and f"/resolve/{hub.commit}/" in first.url
        hub.cut_after, hub.cuts = 8000, RETRIES
        with pytest.raises(ModelError):
            download(first, tmp_path)
        kept = json.loads((tmp_path / "tiny.gguf.part.json").read_text())
        assert kept["commit"] == first.commit
        hub.upload(REF, new)
        second = resolve(REF, hub.url)
        assert second.commit != first.commit
        path = download(second, tmp_path)
        assert all(r["range"] is None for r in hub.requests[-1:])
    assert path.read_bytes() == new
    assert not (tmp_path / "tiny.gguf.part.json").exists()


def test_a_pinned_download_resumes_from_its_own_commit_after_a_new_upload(tiny_model, tmp_path):
    old = tiny_model.read_bytes()
    with Hub({REF: old}) as hub:
        target = resolve(REF, hub.url)
        hub.cut_after, hub.cuts = 8000, RETRIES
        with pytest.raises(ModelError):
            download(target, tmp_path)
        hub.upload(REF, old[::-1])
        assert download(target, tmp_path).read_bytes() == old  # the same target: the old commit's bytes


def test_a_long_listing_is_read_page_by_page(tiny_model):
    files = {f"org/many-GGUF/f{i:04d}.gguf": b"x" * 10 for i in range(25)}
    files["org/many-GGUF/z-last.gguf"] = tiny_model.read_bytes()
    with Hub(files, page_size=10) as hub:
        target = resolve("org/many-GGUF/z-last.gguf", hub.url)
        pages = [r for r in hub.requests if "/tree/" in r["path"]]
    assert len(pages) == 3 and target.sha256 == hashlib.sha256(tiny_model.read_bytes()).hexdigest()


def test_the_listing_is_the_real_hubs_shape(tiny_model):
    with hub_with(tiny_model) as hub:
        import urllib.request

        with urllib.request.urlopen(f"{hub.url}/api/models/org/tiny-GGUF/tree/main") as r:
            entry = json.loads(r.read())[0]
    data = tiny_model.read_bytes()
    assert entry["oid"] == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's, not the sha256
    assert entry["lfs"]["oid"] == hashlib.sha256(data).hexdigest() and "xetHash" in entry


def test_a_full_disk_mid_download_is_a_sentence_and_keeps_the_part(tiny_model, tmp_path, monkeypatch):
    real_open = open
    written = {"n": 0}

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

        def write(self, block):
            if written["n"] > 4000:
                raise OSError(errno.ENOSPC, "No space left on device")
            written["n"] += len(block)
            return self.f.write(block)

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(d, "BLOCK", 4096)
    monkeypatch.setattr(d, "open", lambda p, mode="r", *a, **k: Full(real_open(p, mode, *a, **k))
                        if "a" in mode or "w" in mode else real_open(p, mode, *a, **k), raising=False)
    with hub_with(tiny_model) as hub:
        target = resolve(REF, hub.url)
        with pytest.raises(ModelError, match="No space left on device.*free some space and pull it again"):
            download(target, tmp_path)
        assert (tmp_path / "tiny.gguf.part").exists() and not (tmp_path / "tiny.gguf").exists()
        monkeypatch.undo()
        assert download(target, tmp_path).read_bytes() == tiny_model.read_bytes()


def test_cli_pull_from_a_busy_hub_prints_a_sentence_not_a_traceback(tiny_model, tmp_path):
    env = dict(os.environ, PONDER_HOME=str(tmp_path / "home"))
    with hub_with(tiny_model) as hub:
        hub.busy = 100
        env["PONDER_HUB"] = hub.url
        out = subprocess.run([sys.executable, "-m", "app.main", "models", "pull", REF], env=env,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "Traceback" not in out.stderr and "busy" in out.stderr
