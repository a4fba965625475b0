"""`ponder serve`: the local model behind an OpenAI-compatible HTTP API, many clients decoding together.

protocol.py checks request bodies and writes OpenAI's errors; service.py builds prompts as the engine does and
runs them on the batched runtime (engine/runtime/batch.py); http.py is the HTTP server, and guard.py what bounds a
client's connections, time and sizes.
"""
from engine.server.guard import Limits
from engine.server.http import ApiServer, is_loopback
from engine.server.protocol import EFFORT_BUDGETS, ApiError
from engine.server.service import EMBEDDING_ID, ModelService, ServeSettings

SERVER_API_KEY = "server-api-key"  # the keychain entry `ponder serve --api-key-from-keychain` reads

__all__ = ["ApiError", "ApiServer", "EFFORT_BUDGETS", "EMBEDDING_ID", "Limits", "ModelService", "SERVER_API_KEY",
           "ServeSettings", "is_loopback"]
