"""`ponder serve` in-process on loopback: Gemma 3 270M where the model does not matter, the 0.5B chat model
where thinking does; one server per model for the session."""
from __future__ import annotations

import contextlib

import pytest

from engine import ApiServer, ModelService, ServeSettings


@contextlib.contextmanager
def serving(model, slots: int = 2):
    """`ponder serve` for `model` on a free loopback port, stopped (and its model unloaded) afterwards."""
    service = ModelService(ServeSettings(model=str(model), parallel=slots, n_ctx=1024))
    server = ApiServer(service, "127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()
        service.close()


@pytest.fixture(scope="session")
def gemma_serve(gemma_model):
    with serving(gemma_model) as server:
        yield server


@pytest.fixture(scope="session")
def chat_serve(chat_model):
    with serving(chat_model) as server:
        yield server
