"""What one question asks for: the answer's length, sampling, system prompt, thinking and documents.

Its own module so every answerer (the local engine, a remote server) takes the same options without importing
each other.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.budget.driver import ThinkingRequest
from engine.runtime.loop import SamplingSettings


@dataclass(frozen=True, slots=True)
class AskOptions:
    max_tokens: int = 512  # answer tokens; thinking has its own budget
    sampling: SamplingSettings = SamplingSettings()
    system_prompt: str = ""
    prompt_format: str | None = None  # None: the model's setting in the registry (auto by default)
    template_kwargs: tuple[tuple[str, object], ...] = ()
    thinking: ThinkingRequest | None = None  # None: Auto for chat models, off for base models
    collection: str | None = None  # answer from this document collection, citing its sources
    speculate: bool = False  # verify prompt-lookup drafts where measured costs say they pay; same text either way
    whole_collection_s: float | None = None  # send a collection whole only if it is read this fast (None: if it fits)
    remember: tuple[tuple[str, object], ...] = ()  # merged into the conversation's stored settings (the GUI's slider)
