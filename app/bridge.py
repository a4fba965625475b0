"""The one door between the GUI and the engine: every engine call runs on a worker thread, never the GUI's.

Widgets ask the bridge for a job (`load_model`, `ask`, `index`, `read`) with
callbacks; the job runs on a worker QThread and its events, result or failure
come back as queued signals carrying the engine's own frozen dataclasses.
A job's signals are re-emitted on the GUI thread, so a slot connected just after
submitting still sees every event.
Cancelling sets a flag the engine checks between tokens and files.

The model and everything that uses it (load, ask) live on the `engine` lane. Reading ahead a question still
being typed runs there too, as a job that yields: any job submitted to the lane after it stops it first, so a
question asked meanwhile waits for one chunk at most.
Downloads have their own lane. Indexing and short reads (the conversation list,
collections, settings) run on the `documents` lane, so the sidebar and a long
indexing job never wait behind an answer, nor an answer behind them. The
documents lane has its own Library (its own SQLite connection, WAL letting it
read while the engine writes); History is one object shared by both lanes,
thread-safe behind its lock.
"""
from __future__ import annotations

import itertools
import logging
import threading
import traceback
from typing import Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from engine import (Answerer, ApiServer, AskOptions, Cancelled, Engine, Failure, History, Library, LoadSettings,
                    ModelService, PonderError, Progress, RemoteEndpoint, RemoteEngine, ServeSettings, Settings,
                    data_dir, get_secret, pull_model, save_endpoint, set_secret)

log = logging.getLogger(__name__)
LANES = ("engine", "documents", "downloads", "server")  # server: starting and stopping `ponder serve`


class Relay(QObject):
    """Carries every job's reports from its worker thread to the GUI thread (the Relay lives there, so the
    connection is queued). One for all jobs: a job connected to a signal of its own would be held in a cycle
    Python's collector cannot see, and every job would live as long as the window."""

    carry = Signal(object, str, object)  # job, "event" / "done" / "failed", payload

    def __init__(self, on_end: Callable[["Job"], None] = lambda _job: None) -> None:
        super().__init__()
        self._on_end = on_end
        self.carry.connect(self._deliver)

    @Slot(object, str, object)
    def _deliver(self, job: "Job", kind: str, payload: object) -> None:
        if kind == "event":
            job.event.emit(payload)
            return
        (job.done if kind == "done" else job.failed).emit(payload)
        job.finished.emit()
        self._on_end(job)


class Job(QObject):
    """One piece of engine work. Its public signals are emitted on the GUI thread, from the event loop, so a
    slot connected right after the job was submitted still sees every event."""

    event = Signal(object)  # Token, Progress, ... as the engine emits them
    done = Signal(object)  # the job's result
    failed = Signal(object)  # a Failure
    finished = Signal()  # after done or failed

    _ids = itertools.count(1)

    def __init__(self, label: str, lane: str, fn: Callable[["Job"], object], relay: Relay,
                 yields: bool = False) -> None:
        super().__init__()
        self.id = next(self._ids)
        self.label, self.lane, self.fn, self._relay = label, lane, fn, relay
        self.yields = yields  # work done only while the lane is idle: the next job submitted cancels it
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def emit(self, event: object) -> None:
        """Called by the engine on the worker thread."""
        self._relay.carry.emit(self, "event", event)

    def report(self, kind: str, payload: object) -> None:
        self._relay.carry.emit(self, kind, payload)


def failure_of(e: BaseException) -> Failure:
    """A person's sentence for an exception; the traceback goes in `detail` for a bug report."""
    detail = "".join(traceback.format_exception(e))
    if isinstance(e, PonderError):
        return Failure(e.message, e.detail or detail, "cancelled" if isinstance(e, Cancelled) else "error")
    if isinstance(e, ValueError):
        return Failure(str(e), detail)
    return Failure(f"Something went wrong inside Ponder ({type(e).__name__}: {e}). The details can be copied "
                   "for a bug report.", detail)


class _Runner(QObject):
    """Lives in a lane's thread; runs the jobs posted to it one after another."""

    post = Signal(object)
    post_and_wait = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.post.connect(self.run)  # queued: the signal is emitted on the GUI thread, the slot runs here
        self.post_and_wait.connect(self.run, Qt.ConnectionType.BlockingQueuedConnection)

    @Slot(object)
    def run(self, job: Job) -> None:
        try:
            if job.is_cancelled():
                raise Cancelled()
            result = job.fn(job)
        except BaseException as e:  # every failure reaches the GUI as a sentence; the thread lives on
            if not isinstance(e, PonderError):
                log.exception("job %s failed", job.label)
            job.report("failed", failure_of(e))
        else:
            job.report("done", result)


class Bridge(QObject):
    """Owns the engine and the worker threads. Create it on the GUI thread; call `shutdown` before exit."""

    def __init__(self, engine: Engine | None = None) -> None:
        super().__init__()
        self.history = History(data_dir() / "history.sqlite3") if engine is None else engine.history
        self.engine = engine or Engine(history=self.history)
        self.answerer: Answerer = self.engine  # who answers: the local engine or a server
        self._library: Library | None = None  # the documents lane's own (store connection, embedder)
        self.server: ApiServer | None = None  # `ponder serve` from the app (its own model and threads)
        self._relay = Relay(self._finished)
        self._threads: dict[str, QThread] = {}
        self._runners: dict[str, _Runner] = {}
        self._pending: dict[str, list[Job]] = {lane: [] for lane in LANES}
        for lane in LANES:
            thread = QThread()
            thread.setObjectName(f"ponder-{lane}")
            runner = _Runner()
            runner.moveToThread(thread)
            thread.start()
            self._threads[lane], self._runners[lane] = thread, runner

    # -- the door -------------------------------------------------------------------------------
    def submit(self, label: str, lane: str, fn: Callable[[Job], object], *, on_done=None, on_failed=None,
               on_event=None, yields: bool = False) -> Job:
        """Run `fn(job)` on `lane`'s thread; callbacks run on the GUI thread. A job that `yields` to the lane's
        next one is cancelled when that one is submitted (it ends within a chunk, then the next one runs)."""
        job = Job(label, lane, fn, self._relay, yields)
        for signal, slot in ((job.done, on_done), (job.failed, on_failed), (job.event, on_event)):
            if slot is not None:
                signal.connect(slot)
        for waiting in self._pending[lane]:
            if waiting.yields:
                waiting.cancel()
        self._pending[lane].append(job)
        self._runners[lane].post.emit(job)
        return job

    def _finished(self, job: Job) -> None:
        queue = self._pending[job.lane]
        if job in queue:
            queue.remove(job)

    def is_busy(self, lane: str) -> bool:
        return bool(self._pending[lane])

    def is_working(self, lane: str) -> bool:
        """Whether `lane` has a job that does not yield (a read-ahead would wait behind it)."""
        return any(not job.yields for job in self._pending[lane])

    # -- engine lane ----------------------------------------------------------------------------
    def load_model(self, settings: Settings, **callbacks) -> Job:
        """Load the model `settings` name; the result is (ModelInfo, Backend)."""
        load = LoadSettings(n_ctx=settings.n_ctx, n_threads=settings.n_threads or None,
                            n_gpu_layers=settings.gpu_layers, draft_model=settings.draft_model or None)
        def run(job: Job):
            info = self.engine.load(settings.model or None, load, job.emit, job.is_cancelled)
            self.answerer = self.engine
            return info, self.engine.backend
        return self.submit("Loading model", "engine", run, **callbacks)

    def ask(self, question: str, conversation_id: int | None, options: AskOptions, **callbacks) -> Job:
        """Answer on the engine lane, by whoever answers now (the local model or a server)."""
        return self.submit("Answering", "engine", lambda job: self.answerer.ask(
            question, conversation_id=conversation_id, options=options, on_event=job.emit,
            is_cancelled=job.is_cancelled), **callbacks)

    def read_ahead(self, draft: str, conversation_id: int | None, options: AskOptions, **callbacks) -> Job | None:
        """Read the passages of a question still being typed into the model's cache (`Answerer.read_ahead`), while
        the engine lane is idle: None when another job is there. It yields to any job submitted after it (a newer
        draft's read-ahead too). Its events are Progress ("Reading sources"), its result a ReadAhead."""
        if self.is_working("engine"):
            return None
        def run(job: Job):
            read = lambda done, total: job.emit(Progress(done, total, "Reading sources"))
            return self.answerer.read_ahead(draft, conversation_id=conversation_id, options=options,
                                            is_cancelled=job.is_cancelled, on_read=read)
        return self.submit("Reading ahead", "engine", run, yields=True, **callbacks)

    def ask_again(self, conversation_id: int, options: AskOptions, **callbacks) -> Job:
        """Think more: the last question of `conversation_id` answered again in place of its answer, as one job on
        the engine lane (the turn is dropped first, so the new answer's context is the turns before it). When the
        new answer is stopped or fails, the dropped turn is put back: the conversation goes on from a finished
        answer, not from a fragment."""
        def run(job: Job):
            dropped = self.history.drop_last_turn(conversation_id)
            if not dropped:
                raise ValueError("This conversation has no question to ask again.")
            try:
                answer = self.answerer.ask(dropped[0].content, conversation_id=conversation_id, options=options,
                                           on_event=job.emit, is_cancelled=job.is_cancelled)
            except BaseException:
                self.history.restore_messages(conversation_id, dropped)
                raise
            if answer.stop_reason == "cancelled":
                self.history.restore_messages(conversation_id, dropped)
            return answer
        return self.submit("Thinking more", "engine", run, **callbacks)

    def drop_last_turn(self, conversation_id: int, **callbacks) -> Job:
        """Remove the last question and its answer, on the engine lane so it comes before the next ask; the
        result is the question (None when there was none)."""
        def run(job: Job):
            dropped = self.history.drop_last_turn(conversation_id)
            return dropped[0].content if dropped else None
        return self.submit("Removing the last turn", "engine", run, **callbacks)

    def use_remote(self, endpoint: RemoteEndpoint, api_key: str = "", **callbacks) -> Job:
        """Answer through `endpoint` from now on (checked by listing its models); the result is the model name.
        The endpoint is saved and a given API key goes to the keychain. A loaded local model stays loaded."""
        def run(job: Job):
            save_endpoint(endpoint)
            if api_key:
                set_secret(endpoint.secret_name, api_key)
            remote = RemoteEngine(endpoint, get_secret(endpoint.secret_name), self.history, self.engine.library)
            model = remote.model
            self.answerer = remote
            return model
        return self.submit("Connecting", "engine", run, **callbacks)

    def run_on_engine(self, label: str, fn: Callable[[Engine], object], **callbacks) -> Job:
        return self.submit(label, "engine", lambda job: fn(self.engine), **callbacks)

    # -- documents lane -------------------------------------------------------------------------
    @property
    def library(self) -> Library:
        """Only for jobs on the documents lane."""
        if self._library is None:
            self._library = Library()
        return self._library

    def index(self, collection: str, paths: list[str] | None, **callbacks) -> Job:
        return self.submit(f"Indexing {collection}", "documents",
                           lambda job: self.library.index(collection, paths, job.emit, job.is_cancelled),
                           **callbacks)

    def read(self, label: str, fn: Callable[["Bridge"], object], **callbacks) -> Job:
        """A short read (history, collections) on the documents lane: `fn(bridge)`."""
        return self.submit(label, "documents", lambda job: fn(self), **callbacks)

    # -- downloads lane -------------------------------------------------------------------------
    def pull(self, ref: str, **callbacks) -> Job:
        """Download REPO/FILE (or a URL) into the models folder; the result is the file's path."""
        return self.submit(f"Downloading {ref}", "downloads",
                           lambda job: pull_model(ref, on_progress=job.emit, is_cancelled=job.is_cancelled),
                           **callbacks)

    # -- server lane ----------------------------------------------------------------------------
    def start_server(self, settings: ServeSettings, **callbacks) -> Job:
        """Load the model for serving and listen (the server lane; the server's own threads do the rest)."""
        def run(job: Job):
            self._stop_server()
            service = ModelService(settings, on_progress=job.emit)
            try:
                self.server = ApiServer(service, settings.host, settings.port, settings.api_key).start()
            except PonderError:
                service.close()
                raise
            return self.server.url
        return self.submit("Starting the server", "server", run, **callbacks)

    def stop_server(self, **callbacks) -> Job:
        return self.submit("Stopping the server", "server", lambda job: self._stop_server(), **callbacks)

    def _stop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.stop()
            server.service.close()

    def server_status(self) -> dict | None:
        """What the Server panel shows, read without waiting (None when no server runs)."""
        server = self.server
        if server is None:
            return None
        stats = server.service.stats()
        return {"url": server.url, "model": server.service.model_id, "slots": len(server.service.runtime.slots),
                "requests": stats.requests, "active": stats.active, "queued": stats.queued, "tok_s": stats.tok_s,
                "log": list(server.service.log_lines)}

    # -- shutdown -------------------------------------------------------------------------------
    def cancel_all(self) -> None:
        for queue in self._pending.values():
            for job in queue:
                job.cancel()

    def shutdown(self, wait_ms: int = 30_000) -> None:
        """Stop every job, free the model and the index on their own threads, end the threads. Safe to call
        twice. Blocks until the running jobs have seen their cancel flag (one token or one file)."""
        self.cancel_all()
        closers = {"engine": lambda job: self.engine.unload(), "documents": lambda job: self._close_library(),
                   "downloads": lambda job: None, "server": lambda job: self._stop_server()}
        for lane, thread in self._threads.items():
            self._runners[lane].post_and_wait.emit(Job("Closing", lane, closers[lane], self._relay))
            thread.quit()
            if not thread.wait(wait_ms):
                log.warning("the %s thread did not stop within %d ms", lane, wait_ms)
        self._threads.clear()

    def _close_library(self) -> None:
        if self._library is not None:
            self._library.close()
            self._library = None
