"""`ponder` on the command line: a thin client of the engine. Results on stdout, messages on stderr."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from dataclasses import asdict

from app import cli_models, cli_serve
from app.math_text import MathStream
from app.progress import progress_text
from engine import (DEFAULT_MODEL, Answerer, AskOptions, Cancelled, Engine, Library, LoadSettings, PonderError,
                    Progress, Registry, RemoteEndpoint, RemoteEngine, SamplingSettings, ThinkingRequest, Token,
                    detect_backend, get_secret)


MODEL_DEFAULT = object()  # --budget not given (argparse would run a string default through _budget)


class CliError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
        return value
    return parse


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="a model name from `ponder models`, or a path to a .gguf file (default: "
                   f"{DEFAULT_MODEL.name}, built in)")
    p.add_argument("--ctx", type=_positive(int), default=4096, help="context size in tokens (default 4096); with "
                   "--remote, the server's, to size the documents sent")
    p.add_argument("--threads", type=_positive(int), help="CPU threads (default: physical cores)")
    p.add_argument("--gpu-layers", type=int, help="layers to offload (-1 all, 0 none; default: all if a GPU)")


def _add_generation_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-tokens", type=_positive(int), default=512)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--seed", type=int, help="fixed seed for repeatable answers")
    p.add_argument("--system", default="", help="system prompt")
    p.add_argument("--format", dest="prompt_format", help="prompt format: auto, template, completion, chatml, ...")
    p.add_argument("--budget", type=_budget, default=MODEL_DEFAULT,
                   help="thinking tokens: a number, off, or auto (default: auto for thinking models, else off)")
    p.add_argument("--min-think", type=int, default=0, help="think at least this many tokens (s1-style 'Wait')")
    p.add_argument("--speculate", action=argparse.BooleanOptionalAction, default=False,
                   help="verify prompt-lookup drafts where that is faster (speculative decoding; the same answer)")
    p.add_argument("--draft-model", metavar="NAME", help="a smaller model with the same vocabulary drafts for "
                   "--model where the costs measured here say it pays, else prompt lookup does (implies --speculate)")
    p.add_argument("--force-draft", action="store_true", help="draft with --draft-model even where it cannot pay "
                   "(to measure what it would give)")


def _budget(text: str):
    if text in ("off", "0"):
        return 0
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of tokens, off or auto, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ponder", description="Local language models, your documents, "
                                     "and a thinking budget per question.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does to stderr")
    sub = parser.add_subparsers(dest="command")

    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    ask.add_argument("--conversation", type=int, help="continue this conversation (its id)")
    ask.add_argument("--collection", help="answer from this document collection, citing its sources; it stays "
                     "attached to the conversation (\"\" detaches it)")
    ask.add_argument("--remote", metavar="URL", help="answer through an OpenAI-compatible server (its /v1 base URL); "
                     "its API key, if any, comes from the keychain (`ponder models token --remote URL`)")
    ask.add_argument("--remote-model", default="", help="the server's model name (default: the first it lists)")
    ask.add_argument("--remote-prefilled-think", action="store_true",
                     help="the server's chat template opens the thinking span itself")
    _add_model_options(ask)
    _add_generation_options(ask)

    chat = sub.add_parser("chat", help="a conversation, turn by turn (Ctrl-D to end)")
    chat.add_argument("--conversation", type=int, help="continue this conversation (its id)")
    chat.add_argument("--collection", help="answer from this document collection, citing its sources")
    _add_model_options(chat)
    _add_generation_options(chat)

    models = sub.add_parser("models", help="list, import and configure models")
    models.add_argument("--json", action="store_true")
    msub = models.add_subparsers(dest="action")
    imp = msub.add_parser("import", help="add a GGUF file to the list")
    imp.add_argument("path")
    forget = msub.add_parser("forget", help="remove an imported model from the list (the file stays)")
    forget.add_argument("name")
    fmt = msub.add_parser("format", help="set a model's prompt format")
    fmt.add_argument("name")
    fmt.add_argument("prompt_format")
    cli_models.add_parsers(msub)

    index = sub.add_parser("index", help="add files or folders to a document collection and index them")
    index.add_argument("paths", nargs="*", help="files or folders (none: re-check the collection's folders)")
    index.add_argument("--collection", required=True)
    index.add_argument("--no-embed", action="store_true", help="lexical index only (vectors later)")
    index.add_argument("--watch", type=float, metavar="SECONDS",
                       help="keep watching the collection's folders, re-indexing what changes (Ctrl-C ends)")
    index.add_argument("--json", action="store_true")

    search = sub.add_parser("search", help="find passages in a collection (no model needed)")
    search.add_argument("query")
    search.add_argument("--collection", required=True)
    search.add_argument("--k", type=_positive(int), default=5)
    search.add_argument("--mode", choices=("hybrid", "bm25", "dense"), default="hybrid")
    search.add_argument("--json", action="store_true")

    collections = sub.add_parser("collections", help="list, rename and remove document collections")
    collections.add_argument("--json", action="store_true")
    csub = collections.add_subparsers(dest="action")
    ren = csub.add_parser("rename")
    ren.add_argument("old")
    ren.add_argument("new")
    rm = csub.add_parser("rm", help="remove a collection's index (the files stay)")
    rm.add_argument("name")

    selftest = sub.add_parser("selftest", help="load the default model, generate a few tokens, print figures")
    selftest.add_argument("--gui", action="store_true", help="do it through the desktop app, off-screen")
    selftest.add_argument("--json", action="store_true")
    selftest.add_argument("--gpu-layers", type=int, help="layers to offload (0: CPU only, as CI runs it; default: "
                          "all if a GPU)")

    cli_serve.add_parser(sub, _positive)

    bench = sub.add_parser("bench", help="measure speed against raw llama-cpp-python on this machine")
    bench.add_argument("--only", help="comma-separated benchmark names")
    bench.add_argument("--json", action="store_true")
    sweep = bench.add_argument_group("budget_sweep", "accuracy and tokens per thinking setting on the eval set")
    sweep.add_argument("--model", help="a model name from `ponder models` or a .gguf path, for every benchmark that "
                       "loads one (default: the default model)")
    sweep.add_argument("--split", choices=("tuning", "heldout"), default="tuning",
                       help="which half of the eval set (default tuning; heldout only to report a settled choice)")
    sweep.add_argument("--limit", type=_positive(int), help="at most this many questions per set")
    sweep.add_argument("--plot", help="PNG path (default docs/budget_sweep_<model>.png; results .jsonl beside it)")
    sweep.add_argument("--no-shortcut", action="store_true",
                       help="run every budget even where a larger budget's greedy run is provably the same")
    sweep.add_argument("--resume", action="store_true",
                       help="keep the questions the results file already holds at every setting (same model, split)")
    sweep.add_argument("--redo", default="", metavar="SETTINGS",
                       help="with --resume, ask these settings again (comma-separated, e.g. auto) for the kept questions")
    return parser


class Interrupt:
    """Ctrl-C stops the current answer (within one token) instead of killing the process."""

    def __init__(self) -> None:
        self.flag = threading.Event()

    def __enter__(self):
        self.flag.clear()
        self._previous = signal.signal(signal.SIGINT, lambda *_: self.flag.set())
        return self.flag.is_set

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _progress_printer():
    last = [-1]

    def show(p: Progress) -> None:
        if not sys.stderr.isatty() or p.total <= 0:
            return
        pct = int(100 * p.done / p.total)
        if pct != last[0]:
            last[0] = pct
            print(f"\r{p.label}… {pct}%", end="" if pct < 100 else "\n", file=sys.stderr, flush=True)
    return show


def _load(engine: Engine, args) -> None:
    if args.force_draft and not args.draft_model:
        raise CliError("--force-draft needs --draft-model")
    settings = LoadSettings(n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers,
                            draft_model=args.draft_model, force_draft=args.force_draft)
    with Interrupt() as cancelled:
        engine.load(args.model, settings, _progress_printer(), cancelled)
    decision = engine.draft_decision
    if decision is not None and not decision.is_on:
        print(f"ponder: {decision.reason} Prompt lookup drafts instead.", file=sys.stderr)


def _options(args) -> AskOptions:
    if args.temperature < 0:
        raise CliError(f"--temperature must be 0 or more, not {args.temperature}")
    if args.min_think < 0:
        raise CliError(f"--min-think must be 0 or more, not {args.min_think}")
    thinking = None
    if args.budget is not MODEL_DEFAULT or args.min_think:
        budget = None if args.budget is MODEL_DEFAULT else args.budget
        thinking = ThinkingRequest(budget, min_think=args.min_think)
    return AskOptions(max_tokens=args.max_tokens, system_prompt=args.system, prompt_format=args.prompt_format,
                      sampling=SamplingSettings(temperature=args.temperature, seed=args.seed), thinking=thinking,
                      collection=getattr(args, "collection", None), speculate=args.speculate or bool(args.draft_model))


class _Printer:
    """Answer text to stdout; reasoning to stderr, dimmed on a terminal, so stdout stays the answer. The model's
    LaTeX is shown as plain text, as the window shows it (app/math_text.py)."""

    def __init__(self) -> None:
        self.dim, self.reset = ("\033[2m", "\033[0m") if sys.stderr.isatty() else ("", "")
        self.thinking = False
        self.reasoning, self.answer = MathStream(), MathStream()

    def __call__(self, event) -> None:
        if isinstance(event, Progress):  # the prompt is being read: one line, rewritten in place, then cleared
            if sys.stderr.isatty():
                end = event.done >= event.total
                print("\r\033[K" + ("" if end else progress_text(event)), end="", file=sys.stderr, flush=True)
            return
        if not isinstance(event, Token):
            return
        if event.kind == "thinking":
            self.thinking = True
            self._think(self.reasoning.feed(event.text))
        else:
            if self.thinking:
                self.thinking = False
                self._think(self.reasoning.flush())
                print(file=sys.stderr, flush=True)
            print(self.answer.feed(event.text), end="", flush=True)

    def _think(self, text: str) -> None:
        if text:
            print(f"{self.dim}{text}{self.reset}", end="", file=sys.stderr, flush=True)

    def end(self) -> None:
        """After the answer: what was held back, and the line's end."""
        self._think(self.reasoning.flush())
        print(self.answer.flush(), flush=True)


def answer_json(answer) -> dict:
    """The `--json` object: the fields scripts rely on, stable across versions."""
    return {
        "answer": answer.text, "reasoning": answer.reasoning,
        "thinking_tokens": answer.usage.thinking_tokens, "answer_tokens": answer.usage.answer_tokens,
        "drafted_tokens": answer.usage.drafted_tokens, "accepted_tokens": answer.usage.accepted_tokens,
        "draft_model": answer.usage.draft_model,
        "budget": answer.budget, "sources": [asdict(s) for s in answer.sources], "model": answer.model,
        "backend": answer.backend, "timings": asdict(answer.timings), "usage": asdict(answer.usage),
        "stop_reason": answer.stop_reason, "conversation_id": answer.conversation_id,
        "thinking": asdict(answer.thinking) if answer.thinking else None,
        "context": answer.context, "notice": answer.notice,
    }


def cmd_ask(args) -> int:
    options = _options(args)
    engine: Answerer
    if args.remote:
        endpoint = RemoteEndpoint(args.remote, args.remote_model, args.remote_prefilled_think, n_ctx=args.ctx)
        engine = RemoteEngine(endpoint, get_secret(endpoint.secret_name))
    else:
        engine = Engine()
        _load(engine, args)
    printer = _Printer()
    with Interrupt() as cancelled:
        answer = engine.ask(args.question, conversation_id=args.conversation, options=options,
                            on_event=None if args.json else printer, is_cancelled=cancelled)
    if args.json:
        print(json.dumps(answer_json(answer), ensure_ascii=False))
    else:
        printer.end()
        _print_sources(answer)
    return 130 if answer.stop_reason == "cancelled" else 0


def _print_sources(answer) -> None:
    if answer.notice:
        print(f"note: {answer.notice}", file=sys.stderr)
    for s in answer.sources:
        print(f"[{s.n}] {s.path}" + (f", page {s.page}" if s.page is not None else ""))


def cmd_index(args) -> int:
    library = Library()
    with Interrupt() as cancelled:
        report = library.index(args.collection, args.paths, _progress_printer(), cancelled, embed=not args.no_embed)
        _print_report(report, args.json)
        while args.watch and not cancelled():
            deadline = time.monotonic() + args.watch
            while time.monotonic() < deadline and not cancelled():
                time.sleep(0.1)
            if not cancelled() and library.pending(args.collection):
                report = library.index(args.collection, None, _progress_printer(), cancelled,
                                       embed=not args.no_embed)
                _print_report(report, args.json)
    return 130 if report.cancelled else 0  # Ctrl-C between runs ends --watch normally


def _print_report(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(report)))
    else:
        print(f"{report.collection}: {report.files_seen} files, {report.indexed} indexed, {report.unchanged} unchanged, "
              f"{report.deleted} removed, {len(report.skipped)} skipped; {report.chunks} new chunks, "
              f"{report.embedded} embedded in {report.seconds:.1f} s" + (" (stopped)" if report.cancelled else ""))
        for path, reason in report.skipped:
            print(f"  skipped {path}: {reason}")
    sys.stdout.flush()


def cmd_search(args) -> int:
    hits = Library().search(args.collection, args.query, args.k, args.mode)
    if args.json:
        print(json.dumps([{"path": h.path, "page": h.page, "score": h.score, "snippet": h.snippet} for h in hits]))
        return 0
    for n, h in enumerate(hits, start=1):
        print(f"{n}. {h.path}" + (f", page {h.page}" if h.page is not None else "") + f"  ({h.score:.4f})")
        print(f"   {h.snippet}")
    return 0


def cmd_collections(args) -> int:
    library = Library()
    if args.action == "rename":
        library.rename(args.old, args.new)
        return 0
    if args.action == "rm":
        library.remove(args.name)
        return 0
    found = library.collections()
    if args.json:
        print(json.dumps([asdict(c) for c in found]))
        return 0
    for c in found:
        print(f"{c.name:24} {c.files:>6} files {c.chunks:>8} chunks {c.embedded:>8} embedded "
              f"{c.skipped:>4} skipped  {', '.join(c.roots)}")
    return 0


def cmd_chat(args) -> int:
    options = _options(args)
    engine = Engine()
    _load(engine, args)
    conversation = args.conversation
    print(f"{engine.model_info.name} on {engine.backend.name}. Ctrl-C stops an answer, Ctrl-D ends.",
          file=sys.stderr)
    engine.warm(options)  # the instructions every question starts with, read before the first one is typed
    while True:
        try:
            question = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not question:
            continue
        printer = _Printer()
        with Interrupt() as cancelled:
            answer = engine.ask(question, conversation_id=conversation, options=options, is_cancelled=cancelled,
                                on_event=printer)
        conversation = answer.conversation_id
        printer.end()
        _print_sources(answer)


def cmd_models(args) -> int:
    if args.action == "pull":
        with Interrupt() as cancelled:
            return cli_models.cmd_pull(args, _progress_printer(), cancelled)
    if args.action in ("rm", "catalog", "token"):
        return {"rm": cli_models.cmd_rm, "catalog": cli_models.cmd_catalog, "token": cli_models.cmd_token}[
            args.action](args)
    registry = Registry()
    if args.action == "import":
        entry = registry.import_model(args.path)
        print(f"imported {entry.name} ({entry.info.architecture}, {entry.info.size_label}, {entry.info.quantization})")
        return 0
    if args.action == "forget":
        registry.forget(args.name)
        return 0
    if args.action == "format":
        registry.set_format(args.name, args.prompt_format)
        return 0
    entries = registry.entries()
    if args.json:
        print(json.dumps([{**asdict(e), "info": asdict(e.info) if e.info else None} for e in entries], indent=2))
        return 0
    for e in entries:
        i = e.info
        if i is None:
            print(f"{e.name:40} {e.source:9} {e.problem}")
        else:
            print(f"{e.name:40} {e.source:9} {i.architecture:10} {i.size_label:>6} {i.quantization:8} "
                  f"ctx {i.context_length:>7,} {i.file_size / 1e6:>8,.0f} MB  template: "
                  f"{'yes' if i.has_template else 'no'}  thinking: {i.thinking_format}  format: {e.prompt_format}")
        if e.description:
            print(f"    {e.description}")
    return 0


def cmd_selftest(args) -> int:
    if args.gui:
        from app.selftest import run_gui_selftest

        return run_gui_selftest(args.json, gpu_layers=args.gpu_layers)
    engine = Engine()
    engine.load(None, LoadSettings(n_ctx=1024, n_gpu_layers=args.gpu_layers))
    answer = engine.ask("What is the capital of France?",
                        options=AskOptions(max_tokens=16, sampling=SamplingSettings(temperature=0, seed=1)))
    backend = detect_backend()
    report = {"ok": bool(answer.text), "model": answer.model, "backend": backend.name, "devices": backend.devices,
              "cpu_variant": backend.cpu_variant, "answer": answer.text, "timings": asdict(answer.timings)}
    if args.json:
        print(json.dumps(report))
    else:
        t = answer.timings
        variant = f", CPU variant {backend.cpu_variant}" if backend.cpu_variant else ""
        print(f"backend {backend.name} ({', '.join(backend.devices) or 'no devices listed'}){variant}")
        print(f"model {answer.model}: load {t.load_s:.2f} s, first token {t.ttft_s:.3f} s, "
              f"prefill {t.prefill_tok_s:.0f} tok/s, decode {t.decode_tok_s:.0f} tok/s")
        print(f"answer: {answer.text!r}")
    if not answer.text:
        print("ponder: selftest failed: the model produced no text", file=sys.stderr)
        return 1
    return 0


def cmd_bench(args) -> int:
    from pathlib import Path

    from bench.runner import run_benchmarks
    from bench.sweep import SETTINGS, SweepOptions

    redo = tuple(label for label in args.redo.split(",") if label)
    unknown = [label for label in redo if label not in dict(SETTINGS)]
    if unknown:
        print(f"ponder bench: --redo takes settings from {', '.join(dict(SETTINGS))}, not {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    sweep = SweepOptions(args.model, args.split, args.limit, Path(args.plot) if args.plot else None,
                         shortcut=not args.no_shortcut, resume=args.resume, redo=redo)
    return run_benchmarks(args.only.split(",") if args.only else None, as_json=args.json, sweep=sweep)


COMMANDS = {"ask": cmd_ask, "chat": cmd_chat, "models": cmd_models, "index": cmd_index, "search": cmd_search,
            "collections": cmd_collections, "selftest": cmd_selftest, "bench": cmd_bench,
            "serve": cli_serve.cmd_serve}


def _route(argv: list[str]) -> list[str] | None:
    """`ponder` alone opens the window (None); `ponder [-v] [chat options]` means `ponder [-v] chat [...]`."""
    argv = [a for a in argv if not a.startswith("-psn_")]  # macOS Finder's process serial number, on old systems
    globals_ = [a for a in argv if a in ("-v", "--verbose")]
    rest = [a for a in argv if a not in ("-v", "--verbose")]
    if not rest:
        return None
    if rest[0] in COMMANDS or rest[0] in ("-h", "--help"):
        return argv
    return [*globals_, "chat", *rest]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    routed = _route(argv)
    logging.basicConfig(level=logging.DEBUG if ("-v" in argv or "--verbose" in argv) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if routed is None:
        from app.logs import start_file_logging

        start_file_logging()  # before the GUI's imports: a window that never opens still leaves a trace
        from app.gui import run_app

        return run_app()
    args = parser.parse_args(routed)
    try:
        return COMMANDS[args.command](args)
    except Cancelled as e:
        print(f"ponder: {e}", file=sys.stderr)
        return 130
    except (PonderError, CliError) as e:
        print(f"ponder: {e}", file=sys.stderr)
        if args.verbose and getattr(e, "detail", ""):
            print(e.detail, file=sys.stderr)
        return 2 if isinstance(e, CliError) else 1
    except ValueError as e:
        print(f"ponder: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ponder: stopped", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
