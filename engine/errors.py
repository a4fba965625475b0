"""One error tree for everything the engine raises; each message is a sentence a person can act on."""
from __future__ import annotations


class PonderError(Exception):
    """Something the user can understand and act on went wrong."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ModelError(PonderError):
    """A model file could not be used: missing, damaged, unsupported or too big."""


class DocumentError(PonderError):
    """A document could not be read; it is skipped with this reason."""


class CollectionError(PonderError):
    """A document collection or its index could not be used."""


class GenerationError(PonderError):
    """Generating an answer failed part way."""


class HistoryError(PonderError):
    """The conversation history could not be read or written."""


class RemoteError(PonderError):
    """A remote engine could not be reached or answered with an error."""


class Cancelled(PonderError):
    """The user stopped the job."""

    def __init__(self, message: str = "Stopped.") -> None:
        super().__init__(message)
