"""Fixtures shared by the engine's tests of local and remote answering."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import Library


@dataclass(frozen=True)
class Atlas:
    """A library with one indexed collection, "atlas": one file that says what Freedonia's capital is."""

    library: Library
    source: Path  # the file, as sources name it
    question: str = "What is the capital of Freedonia?"
    answer: str = "Glimmerton"


@pytest.fixture
def atlas(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "freedonia.md").write_text("# Freedonia\n\nThe capital of Freedonia is Glimmerton.\n")
    library = Library(tmp_path / "atlas.sqlite3", embedder)
    library.index("atlas", [str(docs)])
    yield Atlas(library, docs / "freedonia.md")
    library.store.close()  # the embedder is the session's
