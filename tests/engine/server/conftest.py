"""`ponder serve` in-process on loopback: Gemma 3 270M where the model does not matter, the 0.5B chat model
where thinking does."""
from __future__ import annotations

import pytest

from engine import ApiServer, ModelService, ServeSettings


def _serve(model, slots: int):
    service = ModelService(ServeSettings(model=str(model), parallel=slots, n_ctx=1024))
    server = ApiServer(service, "127.0.0.1", 0).start()
    return service, server


@pytest.fixture(scope="session")
def gemma_serve(gemma_model):
    service, server = _serve(gemma_model, 2)
    yield server
    server.stop()
    service.close()


@pytest.fixture(scope="session")
def chat_serve(chat_model):
    service, server = _serve(chat_model, 2)
    yield server
    server.stop()
    service.close()
