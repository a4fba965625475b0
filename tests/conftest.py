"""Shared fixtures: an isolated Ponder home per test session, the real built-in models, tiny generated models."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.hub import free_port

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def ponder_home(tmp_path_factory) -> Path:
    """Everything Ponder writes goes under a temporary folder, never the developer's real data."""
    home = tmp_path_factory.mktemp("ponder-home")
    os.environ["PONDER_HOME"] = str(home)
    return home


class MemoryKeyring:
    """Tests never touch the developer's real keychain: secrets go to a dict for the session."""

    def __init__(self) -> None:
        import keyring.backend

        class Backend(keyring.backend.KeyringBackend):
            priority = 1
            store: dict = {}

            def get_password(self, service, username):
                return self.store.get((service, username))

            def set_password(self, service, username, password):
                self.store[(service, username)] = password

            def delete_password(self, service, username):
                from keyring.errors import PasswordDeleteError

                if self.store.pop((service, username), None) is None:
                    raise PasswordDeleteError(username)
        self.backend = Backend()


@pytest.fixture(scope="session", autouse=True)
def memory_keyring():
    import keyring

    memory = MemoryKeyring().backend
    keyring.set_keyring(memory)
    return memory


@pytest.fixture(scope="session")
def gemma_model(ponder_home) -> Path:
    """Gemma 3 270M base, the small fast built-in model most tests run on, assembled once per session."""
    from engine.models.builtin import GEMMA_3_270M, ensure_model

    return ensure_model(GEMMA_3_270M)


@pytest.fixture(scope="session")
def engine(gemma_model):
    """One engine with Gemma 3 270M loaded, shared by tests that only ask questions."""
    from engine import Engine, LoadSettings

    e = Engine()
    e.load(gemma_model, LoadSettings(n_ctx=2048))
    yield e
    e.unload()


@pytest.fixture(scope="session")
def chat_model(ponder_home) -> Path:
    """Qwen2.5-Coder 0.5B Instruct, the smallest built-in chat model (a chat template), assembled once."""
    from engine.models.builtin import QWEN_CODER_05B, ensure_model

    return ensure_model(QWEN_CODER_05B)


@pytest.fixture(scope="session")
def chat_engine(chat_model):
    """One engine with the 0.5B chat model loaded, for thinking on a real chat model."""
    from engine import Engine, LoadSettings

    e = Engine()
    e.load(chat_model, LoadSettings(n_ctx=2048))
    yield e
    e.unload()


@pytest.fixture(scope="session")
def embedder(ponder_home):
    """The default embedding model, converted from its PyPI package once per session."""
    from engine.models.convert_bert import ensure_default_embedder
    from engine.paths import models_dir
    from engine.rag.embed import Embedder

    e = Embedder(ensure_default_embedder(models_dir() / "embedding"))
    yield e
    e.close()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from bench.synthetic import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.fixture
def copy_of(tmp_path):
    def copy(src: Path, name: str | None = None) -> Path:
        dst = tmp_path / (name or src.name)
        shutil.copyfile(src, dst)
        return dst
    return copy


@contextlib.contextmanager
def _llama_cpp_server(model, tmp_path_factory, *extra: str):
    """llama-cpp-python's OpenAI-compatible server for `model` on a free loopback port: its /v1 URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
                                "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "2", *extra],
                               stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as r:
                    json.loads(r.read())
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(log.read_text()[-2000:])
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="session")
def gemma_server(gemma_model, tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with Gemma 3 270M, on loopback."""
    # Gemma 3 270M is a base model: an instruction format makes it answer instead of ending the turn.
    with _llama_cpp_server(gemma_model, tmp_path_factory, "--chat_format", "alpaca") as url:
        yield url


@pytest.fixture(scope="session")
def thinking_server(tiny_model, tmp_path_factory):
    """A tiny random model whose template opens <think>: it thinks until something cuts it off."""
    with _llama_cpp_server(tiny_model, tmp_path_factory) as url:
        yield url
