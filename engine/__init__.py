"""Ponder's engine: everything the GUI and the CLI may use. No Qt here, ever."""
from engine.budget.driver import ThinkingRequest
from engine.chat.history import Conversation, History, StoredMessage
from engine.chat.templates import FORMATS, Message
from engine.engine import AskOptions, Engine
from engine.errors import (Cancelled, CollectionError, DocumentError, GenerationError, HistoryError, ModelError,
                           PonderError)
from engine.events import Answer, Failure, Progress, ThinkingReport, Timings, Token, Usage
from engine.models.inspect import ModelInfo, inspect_model
from engine.models.registry import ModelEntry, Registry
from engine.rag.index import IndexReport
from engine.rag.library import DocumentContext, Library
from engine.rag.search import Hit
from engine.runtime.backend import Backend, detect_backend
from engine.runtime.loop import GenerationSettings, SamplingSettings
from engine.runtime.session import LoadSettings
from engine.settings import Settings

__all__ = [
    "Answer", "AskOptions", "Backend", "Cancelled", "CollectionError", "Conversation", "DocumentContext",
    "DocumentError", "Hit", "IndexReport", "Library", "Engine", "FORMATS", "Failure",
    "GenerationError", "GenerationSettings", "History", "HistoryError", "LoadSettings", "Message", "ModelEntry",
    "ModelError", "ModelInfo", "PonderError", "Progress", "Registry", "SamplingSettings", "Settings",
    "StoredMessage", "ThinkingReport", "ThinkingRequest", "Timings", "Token", "Usage", "detect_backend", "inspect_model",
]
