"""Downloads against a real HTTP server on loopback: metadata, progress, resume after an interruption,
a damaged byte rejected, cancel keeps the part, gated models, and the CLI."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from engine import Cancelled, ModelError
from engine.models.download import RETRIES, download, resolve
from bench.hub import hub_with

REF = "org/tiny-GGUF/tiny.gguf"


def test_pull_verifies_and_the_model_appears_only_when_complete(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        target = resolve(REF, hub.url)
        assert target.size == tiny_model.stat().st_size
        assert target.sha256 == hashlib.sha256(tiny_model.read_bytes()).hexdigest()
        seen = []
        path = download(target, tmp_path, on_progress=seen.append)
    assert path == tmp_path / "tiny.gguf" and path.read_bytes() == tiny_model.read_bytes()
    assert seen[-1].done == seen[-1].total == target.size
    assert not (tmp_path / "tiny.gguf.part").exists()


def test_an_interrupted_download_resumes_with_a_range_request(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        target = resolve(REF, hub.url)
        hub.cut_after, hub.cuts = 3000, RETRIES  # more breaks than the download retries on its own
        with pytest.raises(ModelError, match="pull it again to resume"):
            download(target, tmp_path)
        part = tmp_path / "tiny.gguf.part"
        assert part.stat().st_size == 3000 * RETRIES and not (tmp_path / "tiny.gguf").exists()
        path = download(target, tmp_path)
        assert hub.requests[-1]["range"] == f"bytes={3000 * RETRIES}-"
    assert path.read_bytes() == tiny_model.read_bytes()


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_broken_connection_is_resumed_on_its_own(tiny_model, tmp_path, reset):
    with hub_with(tiny_model) as hub:
        hub.cut_after, hub.cuts, hub.reset = 3000, 2, reset
        path = download(resolve(REF, hub.url), tmp_path)
        ranges = [r["range"] for r in hub.requests if "/resolve/" in r["path"]]
    assert path.read_bytes() == tiny_model.read_bytes()
    assert ranges[0] is None and all(r and r.startswith("bytes=") for r in ranges[1:]) and len(ranges) == 3


def test_a_server_that_ignores_range_starts_again(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        target = resolve(REF, hub.url)
        hub.cut_after, hub.cuts = 3000, RETRIES
        with pytest.raises(ModelError):
            download(target, tmp_path)
        hub.ignore_range = True
        assert download(target, tmp_path).read_bytes() == tiny_model.read_bytes()


def test_a_damaged_byte_is_rejected_and_nothing_appears(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        target = resolve(REF, hub.url)
        hub.corrupt = True
        with pytest.raises(ModelError, match="damaged"):
            download(target, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cancel_keeps_the_part_for_later(tiny_model, tmp_path):
    with hub_with(tiny_model) as hub:
        target = resolve(REF, hub.url)
        with pytest.raises(Cancelled):
            download(target, tmp_path, is_cancelled=lambda: True)
    assert (tmp_path / "tiny.gguf.part").exists() and not (tmp_path / "tiny.gguf").exists()


def test_bad_references_and_missing_files_are_sentences(tiny_model, tmp_path):
    with pytest.raises(ModelError, match="REPO/FILE.gguf"):
        resolve("just-a-name")
    with hub_with(tiny_model) as hub:
        with pytest.raises(ModelError, match="has no file"):
            resolve("org/tiny-GGUF/other.gguf", hub.url)
        with pytest.raises(ModelError, match="No such repository"):
            resolve("org/missing-GGUF/x.gguf", hub.url)
    with pytest.raises(ModelError, match="Cannot reach"):
        resolve(REF, "http://127.0.0.1:9")


def test_the_token_goes_to_the_hub_only(tiny_model, tmp_path):
    with hub_with(tiny_model, cdn=True) as hub:
        download(resolve(REF, hub.url, token="secret-token"), tmp_path, token="secret-token")
        assert hub.requests and all(r["auth"] == "Bearer secret-token" for r in hub.requests)
        assert hub.cdn_requests and all(r["auth"] is None for r in hub.cdn_requests)


def test_a_plain_url_on_another_host_never_gets_the_hub_token(tiny_model, tmp_path, monkeypatch):
    with hub_with(tiny_model) as hub, hub_with(tiny_model) as elsewhere:
        monkeypatch.setenv("PONDER_HUB", hub.url)
        url = f"{elsewhere.url}/org/tiny-GGUF/resolve/main/tiny.gguf"
        download(resolve(url, token="secret-token"), tmp_path, token="secret-token")
        assert elsewhere.requests and all(r["auth"] is None for r in elsewhere.requests)
        assert not hub.requests


def test_not_enough_disk_space_is_refused_before_starting(tiny_model, tmp_path, monkeypatch):
    import engine.models.download as d

    monkeypatch.setattr(d.shutil, "disk_usage", lambda _p: type("U", (), {"free": 1000})())
    with hub_with(tiny_model) as hub:
        with pytest.raises(ModelError, match="Not enough disk space"):
            download(resolve(REF, hub.url), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_pull_lists_the_model_then_rm_deletes_it(tiny_model, ponder_home, tmp_path):
    env = dict(os.environ, PONDER_HOME=str(tmp_path / "home"))
    with hub_with(tiny_model) as hub:
        env["PONDER_HUB"] = hub.url
        out = subprocess.run([sys.executable, "-m", "app.main", "models", "pull", REF], env=env,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "downloaded tiny.gguf" in out.stdout
    listed = subprocess.run([sys.executable, "-m", "app.main", "models"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert "tiny" in listed.stdout
    assert (tmp_path / "home" / "data" / "models" / "tiny.gguf").exists()
    rm = subprocess.run([sys.executable, "-m", "app.main", "models", "rm", "tiny"], env=env, capture_output=True,
                        text=True, timeout=120)
    assert rm.returncode == 0, rm.stderr
    assert not (tmp_path / "home" / "data" / "models" / "tiny.gguf").exists()
