"""Which built-in model is the default: the one a frozen Ponder ships, else Qwen2.5-Coder 1.5B Instruct.

The rule (README, "The default model"): the best answers among the built-in models that still decode at
15 tok/s or more on two CPU cores."""
from __future__ import annotations

from pathlib import Path

from engine.models.builtin import QWEN_CODER_15B, BuiltinModel, bundled, ensure_model, model_path

DEFAULT_MODEL = QWEN_CODER_15B


def default_model() -> BuiltinModel:
    """The model loaded when none is named; an installer built with another model makes that one the default."""
    shipped = bundled()
    return shipped[0] if shipped is not None else DEFAULT_MODEL


def default_model_path() -> Path:
    return model_path(default_model())


def ensure_default_model(on_progress=None, is_cancelled=None) -> Path:
    """Return the default model's path, assembling it first if it is missing or damaged."""
    return ensure_model(default_model(), on_progress, is_cancelled)
