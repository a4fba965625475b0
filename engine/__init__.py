"""Ponder's engine: everything the GUI and the CLI use, and the only door they use. No Qt here, ever.

Answering: Engine (a local model) and RemoteEngine (an OpenAI-compatible server) are both Answerers; a question
goes in with AskOptions, Token events stream out, an Answer comes back. Documents: Library. Conversations:
History. Models: Registry, the catalog, pull_model. Errors: one tree under PonderError, each a sentence.
"""
import engine.openmp  # noqa: F401  first: how llama.cpp's threads wait is read when llama.cpp loads
from engine.answering import Answerer
from engine.budget.driver import ThinkingRequest
from engine.chat.history import Conversation, History, StoredMessage
from engine.chat.templates import FORMATS, Message
from engine.engine import Engine
from engine.errors import (Cancelled, CollectionError, DocumentError, GenerationError, HistoryError, ModelError,
                           PonderError, RemoteError)
from engine.events import (Answer, ConversationStarted, Failure, Progress, ReadAhead, Source, ThinkingReport, Timings,
                           Token, Usage)
from engine.links import is_safe_link
from engine.models.catalog import CatalogEntry, load_catalog
from engine.models.default import DEFAULT_MODEL
from engine.models.download import pull_model
from engine.models.inspect import ModelInfo, inspect_model
from engine.models.registry import ModelEntry, Registry
from engine.options import AskOptions
from engine.paths import config_dir, data_dir, models_dir
from engine.rag.index import IndexReport
from engine.rag.library import DocumentContext, Library
from engine.rag.search import Hit
from engine.rag.store import CollectionSummary
from engine.remote import RemoteEndpoint, RemoteEngine, load_endpoints, remove_endpoint, save_endpoint
from engine.runtime.backend import Backend, detect_backend
from engine.runtime.loop import GenerationSettings, SamplingSettings
from engine.runtime.session import LoadSettings
from engine.server import SERVER_API_KEY, ApiServer, ModelService, ServeSettings, is_loopback
from engine.secrets import HUB_TOKEN, delete_secret, get_secret, set_secret
from engine.settings import AUTO_GPU_LAYERS, Settings, read_json, write_json_atomic

__all__ = [
    "is_safe_link",
    "Answer", "Answerer", "AskOptions", "AUTO_GPU_LAYERS", "Backend", "Cancelled", "CatalogEntry", "CollectionError",
    "CollectionSummary", "Conversation", "ConversationStarted", "DEFAULT_MODEL", "DocumentContext", "DocumentError",
    "Engine", "Failure", "FORMATS", "GenerationError", "GenerationSettings", "History", "HistoryError", "Hit",
    "HUB_TOKEN", "IndexReport", "Library", "LoadSettings", "Message", "ModelEntry", "ModelError", "ModelInfo",
    "PonderError", "Progress", "ReadAhead", "Registry", "RemoteEndpoint", "RemoteEngine", "RemoteError",
    "SamplingSettings", "Settings", "Source", "StoredMessage", "ThinkingReport", "ThinkingRequest", "Timings", "Token",
    "Usage",
    "config_dir", "data_dir", "delete_secret", "detect_backend", "get_secret", "inspect_model", "load_catalog",
    "load_endpoints", "models_dir", "pull_model", "read_json", "remove_endpoint", "save_endpoint", "set_secret",
    "write_json_atomic",
    # `ponder serve`
    "ApiServer", "ModelService", "SERVER_API_KEY", "ServeSettings", "is_loopback",
]
