"""The main window's documents: the panel shown when there are collections or when asked, indexing, and folders
re-indexed while the app runs."""
from __future__ import annotations

from app.bridge import Job
from app.widgets.markdown import LINK_ROOTS
from engine import Failure, IndexReport, Progress

WATCH_EVERY_MS = 10_000  # how often the collections' folders are checked for changes while the app runs


class DocumentsMixin:
    """Mixed into MainWindow: uses its bridge, documents panel and dock, composer and show_error."""

    def show_documents(self, shown: bool = True) -> None:
        self.documents_chosen = shown
        self.documents_dock.setVisible(shown)
        if shown:
            self.documents.collections.setFocus()

    def ask_about_folder(self) -> None:
        self.show_documents()
        self.documents.add_folder()

    def refresh_collections(self) -> None:
        def done(collections):
            LINK_ROOTS[:] = [root for c in collections for root in c.roots]
            self.documents.set_collections(collections)
            self.composer.set_collections([c.name for c in collections])
            if self.documents_chosen is None and collections:
                self.documents_dock.setVisible(True)
        self.bridge.read("Listing collections", lambda b: b.library.collections(), on_done=done,
                         on_failed=lambda f: self.show_error(f.message))

    def index(self, collection: str, paths: list[str]) -> Job | None:
        if self.index_job is not None:
            self.show_error("A collection is being indexed; wait for it or cancel it first.")
            return None
        self.documents.indexing_started(collection)

        def done(report: IndexReport):
            self.index_job = None
            self.documents.indexing_finished(report)
            self.refresh_collections()
            if not self.composer.collection():
                self.composer.set_collection(collection)

        def failed(f: Failure):
            self.index_job = None
            self.documents.indexing_finished(None, f.message)
            self.refresh_collections()

        self.index_job = self.bridge.index(collection, paths or None, on_done=done, on_failed=failed,
                                           on_event=lambda p: isinstance(p, Progress)
                                           and self.documents.indexing_progress(p))
        return self.index_job

    def _remove_collection(self, name: str) -> None:
        self.bridge.read("Removing collection", lambda b: b.library.remove(name),
                         on_done=lambda _r: self.refresh_collections(), on_failed=lambda f: self.show_error(f.message))

    def _show_problems(self, name: str) -> None:
        self.bridge.read("Listing problems", lambda b: b.library.problems(name),
                         on_done=self.documents.set_problems)

    def _watch_folders(self) -> None:
        """Re-index collections whose files changed on disk (only while nothing else is indexing)."""
        if self.index_job is not None or self.bridge.is_busy("documents"):
            return

        def changed(names):
            if names and self.index_job is None:
                self.index(names[0], [])
        self.bridge.read("Watching folders", lambda b: [c.name for c in b.library.collections()
                                                        if b.library.pending(c.name)], on_done=changed)
