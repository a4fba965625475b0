"""Ponder's engine: everything the GUI and the CLI may use. No Qt here, ever."""
from engine.budget.driver import ThinkingRequest
from engine.chat.history import Conversation, History, StoredMessage
from engine.chat.templates import FORMATS, Message
from engine.engine import AskOptions, Engine
from engine.errors import Cancelled, GenerationError, HistoryError, ModelError, PonderError
from engine.events import Answer, Failure, Progress, ThinkingReport, Timings, Token, Usage
from engine.models.inspect import ModelInfo, inspect_model
from engine.models.registry import ModelEntry, Registry
from engine.runtime.backend import Backend, detect_backend
from engine.runtime.loop import GenerationSettings, SamplingSettings
from engine.runtime.session import LoadSettings
from engine.settings import Settings

__all__ = [
    "Answer", "AskOptions", "Backend", "Cancelled", "Conversation", "Engine", "FORMATS", "Failure",
    "GenerationError", "GenerationSettings", "History", "HistoryError", "LoadSettings", "Message", "ModelEntry",
    "ModelError", "ModelInfo", "PonderError", "Progress", "Registry", "SamplingSettings", "Settings",
    "StoredMessage", "ThinkingReport", "ThinkingRequest", "Timings", "Token", "Usage", "detect_backend", "inspect_model",
]
