"""Fuzzing every parser Ponder points at untrusted input, with hypothesis: the GGUF header reader, each document
loader, the chunker, the chat-template renderer, the history and settings readers and the CLI's arguments.

Each entry point takes one drawn input and must end in a result or in its own clear error (`allowed`); anything
else is a crash, and an input that takes longer than HANG_S is a hang. The tests run a short profile (tens of
inputs per entry point), `ponder bench --only robustness` a long one.
"""
from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from engine.errors import PonderError

HANG_S = 10.0


@dataclass
class FuzzResult:
    entry: str
    tried: int = 0
    crashes: int = 0
    hangs: int = 0
    slowest_s: float = 0.0
    examples: list[str] = field(default_factory=list)  # what crashed or hung, shortened


@dataclass(frozen=True)
class Entry:
    strategy: st.SearchStrategy
    run: Callable[[object, Path], object]
    allowed: tuple[type[BaseException], ...] = (PonderError,)


# -- seeds: small valid inputs that mutations start from ------------------------------------------------------
def _minimal_pdf(text: str = "Hello robust world") -> bytes:
    stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _minimal_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Robust", 1)
    document.add_paragraph("A paragraph of text that the loader reads.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def minimal_epub(chapters: tuple[str, ...] = ("<html><body><p>Chapter one.</p></body></html>",)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="OEBPS/book.opf"/>'
                   "</rootfiles></container>")
        items = "".join(f'<item id="c{i}" href="c{i}.xhtml"/>' for i in range(len(chapters)))
        spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
        z.writestr("OEBPS/book.opf", f'<package xmlns="http://www.idpf.org/2007/opf"><manifest>{items}</manifest>'
                   f"<spine>{spine}</spine></package>")
        for i, chapter in enumerate(chapters):
            z.writestr(f"OEBPS/c{i}.xhtml", chapter)
    return buffer.getvalue()


_SEEDS: dict[str, bytes] = {}


def seed(kind: str) -> bytes:
    if kind not in _SEEDS:
        if kind == "gguf":
            from bench.synthetic import write_tiny_model

            with tempfile.TemporaryDirectory() as folder:
                _SEEDS[kind] = write_tiny_model(Path(folder) / "t.gguf").read_bytes()[:16384]
        else:
            _SEEDS[kind] = {"pdf": _minimal_pdf, "docx": _minimal_docx, "epub": minimal_epub}[kind]()
    return _SEEDS[kind]


def mutated(kind: str) -> st.SearchStrategy[bytes]:
    """A valid seed with flipped bytes, absurd little-endian counts written over it, a cut or garbage appended."""
    def apply(base: bytes, edits, cut, tail) -> bytes:
        data = bytearray(base)
        for position, kind_of_edit, value in edits:
            at = position % len(data)
            if kind_of_edit == 0:
                data[at] ^= value & 0xFF or 1
            else:
                data[at:at + 8] = value.to_bytes(8, "little")
        data = data[:cut % (len(data) + 1)] if cut is not None else data
        return bytes(data) + tail

    return st.deferred(lambda: st.builds(
        apply, st.just(seed(kind)),
        st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 1),
                           st.sampled_from([0, 1, 0xFF, 0xFFFF, 2**31, 2**32 - 1, 2**63, 2**64 - 1, 1 << 40])),
                 max_size=6),
        st.one_of(st.none(), st.integers(0, 1 << 20)), st.binary(max_size=64)))


def _zip_members(kind: str) -> st.SearchStrategy[bytes]:
    """A well-formed zip whose members' contents are damaged (the XML the loaders parse)."""
    def rebuild(base: bytes, victim: int, garbage: bytes, drop: bool) -> bytes:
        source, out = zipfile.ZipFile(io.BytesIO(base)), io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            infos = source.infolist()
            for i, info in enumerate(infos):
                data = source.read(info)
                if i == victim % len(infos):
                    if drop:
                        continue
                    data = data[:len(data) // 2] + garbage
                z.writestr(info.filename, data)
        return out.getvalue()

    return st.deferred(lambda: st.builds(rebuild, st.just(seed(kind)), st.integers(0, 50), st.binary(max_size=200),
                                         st.booleans()))


# -- entry points -------------------------------------------------------------------------------------------------
def _parse_file(suffix: str):
    def run(data: bytes, folder: Path):
        from engine.rag.chunk import chunk_pages
        from engine.rag.ingest import parse

        path = folder / f"doc{suffix}"
        path.write_bytes(data)
        doc = parse(path)
        return chunk_pages(doc.pages, lambda s: len(s.split()))
    return run


def _gguf(data: bytes, folder: Path):
    from engine.models.gguf_header import HeaderError, read_header
    from engine.models.inspect import inspect_model

    path = folder / "m.gguf"
    path.write_bytes(data)
    try:
        read_header(path)
    except HeaderError:
        pass
    return inspect_model(path)


def _chunk(text: str, folder: Path):
    from engine.rag.chunk import chunk_page
    from engine.rag.ingest import Page

    chunks = chunk_page(Page(1, text), lambda s: len(s.split()), max_tokens=16, overlap=4)
    for c in chunks:
        if not (0 <= c.start <= c.end <= len(text) and text[c.start:c.end] == c.text):
            raise AssertionError(f"chunk {c.start}:{c.end} is not a span of its page")
    return chunks


_JINJA = ["{{ ", " }}", "{% ", " %}", "{% for m in messages %}", "{% endfor %}", "{% if ", "{% endif %}",
          "{% else %}", "m.content", "m.role", "messages", "bos_token", "|upper", "|length", "|join(',')",
          "range(", ")", "(", "9", "99999", " * ", " ** ", " + ", " ~ ", "'x'", "loop.index", "namespace(a=1)",
          "{% set ns = namespace(s='ab') %}", "{% set ns.s = ns.s ~ ns.s %}", "{% macro f(n) %}{{ f(n) }}",
          "{% endmacro %}", "f(1)", "raise_exception('no')", "{{ '{:>9}'.format(1) }}", "|center(", "|indent(",
          "|replace('a', 'aa')", "|tojson", "|list", "x", "\n", "}", "{", "%", "|", ".", "[0]", "__class__",
          "lipsum(", "cycler(", "dict(a=1)", "|batch(3)", "|slice(2)", "|wordwrap(", "|truncate(", "|format("]


def _template(source: str, folder: Path):
    from engine.chat.templates import Message, render_template

    return render_template(source, [Message("system", "Be brief."), Message("user", "Hi {{ 1 }} <b>"),
                                    Message("assistant", "Hello."), Message("user", "Bye")],
                           bos_token="<s>", eos_token="</s>")


def _history(data: bytes, folder: Path):
    from engine.chat.history import History

    path = folder / "history.sqlite3"
    path.write_bytes(data)
    history = History(path)
    try:
        for c in history.conversations():
            history.messages(c.id)
        history.create_conversation("after")
    finally:
        history.close()


_HISTORY_SEED: list[bytes] = []


def history_seed() -> bytes:
    """A real history file with a few conversations, checkpointed into the main file."""
    if not _HISTORY_SEED:
        from engine.chat.history import History

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "h.sqlite3"
            h = History(path)
            for i in range(3):
                cid = h.create_conversation(f"conversation {i}")
                h.add_message(cid, "user", f"question {i}")
                h.add_message(cid, "assistant", f"answer {i} " * 50)
            h._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            h.close()
            _HISTORY_SEED.append(path.read_bytes())
    return _HISTORY_SEED[0]


def _mutated_history() -> st.SearchStrategy[bytes]:
    def apply(edits, cut) -> bytes:
        data = bytearray(history_seed())
        for position, value in edits:
            data[position % len(data)] = value
        return bytes(data[:cut]) if cut is not None else bytes(data)

    return st.builds(apply, st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
                     st.one_of(st.none(), st.integers(0, 1 << 15)))


def _settings(data: bytes, folder: Path):
    from engine.settings import Settings, read_json

    path = folder / "settings.json"
    path.write_bytes(data)
    s = Settings.load(path)
    read_json(path, [])
    return s


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.sampled_from(["model", "n_ctx", "n_threads", "n_gpu_layers", "temperature",
                                          "max_tokens", "system_prompt", "remote", "other"]), inner, max_size=6),
                     max_leaves=12)
_CLI_WORDS = ["models", "collections", "rename", "rm", "format", "forget", "import", "list", "--sha256", "-k",
              "--mode", "bm25", "-v", "--json", "x", "-1", "0", "999", "chatml", "auto", "nope",
              "/nonexistent/path", "a.gguf", "--help", "-h", "\x00", "é", "--"]
# Commands that neither load a model, open the window, nor read a folder a random word might name ("." or "/").
_CLI_SAFE = ["models", "collections"]


def _cli(argv: list[str], folder: Path):
    from app.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: usage error (2) or --help (0)
            code = e.code
    if code not in (0, 1, 2, None):
        raise AssertionError(f"exit status {code}")
    return code


def entries() -> dict[str, Entry]:
    from engine.models.gguf_header import HeaderError

    html = st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
        st.integers(1, 5000).map(lambda n: "<div>" * n + "deep" + "</div>" * (n // 2)),
        st.lists(st.sampled_from(["<p>", "</p>", "<script>", "</script>", "<h1>", "<td>", "&amp;", "&#0;", "&#x110000;",
                                  "<!--", "-->", "<![CDATA[", "text", "\n", "<br/>", "<svg>", "</", "<"]),
                 max_size=60).map("".join))
    encodings = st.tuples(st.text(max_size=200), st.sampled_from(["utf-8", "utf-16", "utf-16-le", "cp1252",
                                                                  "shift_jis", "koi8-r", "latin-1", "gb18030"]))
    return {
        "gguf_header": Entry(mutated("gguf"), _gguf, (PonderError, HeaderError)),
        "pdf": Entry(mutated("pdf"), _parse_file(".pdf")),
        "docx_zip": Entry(mutated("docx"), _parse_file(".docx")),
        "docx_members": Entry(_zip_members("docx"), _parse_file(".docx")),
        "epub_zip": Entry(mutated("epub"), _parse_file(".epub")),
        "epub_members": Entry(_zip_members("epub"), _parse_file(".epub")),
        "html": Entry(html.map(lambda s: s.encode("utf-8", "replace")), _parse_file(".html")),
        "text_encodings": Entry(st.one_of(st.binary(max_size=400), encodings.map(
            lambda t: t[0].encode(t[1], "replace"))), _parse_file(".txt")),
        "chunker": Entry(st.text(st.sampled_from("ab .!?\n#\t é") | st.characters(), max_size=400), _chunk, ()),
        "chat_template": Entry(st.lists(st.sampled_from(_JINJA), max_size=25).map("".join) | st.text(max_size=80),
                               _template),
        "history_file": Entry(st.one_of(_mutated_history(), st.binary(max_size=2000)), _history),
        "settings_file": Entry(st.one_of(_JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)),
                               _settings, ()),
        "cli_arguments": Entry(st.tuples(st.sampled_from(_CLI_SAFE), st.lists(st.sampled_from(_CLI_WORDS) | st.text(
            st.characters(blacklist_characters="./\\"), max_size=8), max_size=5))
                               .map(lambda t: [t[0], *t[1]]), _cli, (PonderError,)),
    }


def fuzz(name: str, examples: int, seed_value: int | None = None) -> FuzzResult:
    """Try `examples` inputs on entry point `name`; count crashes and hangs instead of stopping at the first."""
    entry = entries()[name]
    result = FuzzResult(name)
    sqlite_errors = (sqlite3.Error,)  # never allowed to escape: the readers turn them into their own errors

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed_value is None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(entry.strategy)
    def attempt(value) -> None:
        result.tried += 1
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            try:
                entry.run(value, Path(folder))
            except entry.allowed:
                pass
            except (Exception, RecursionError) as e:  # noqa: BLE001 - counting crashes is the point
                result.crashes += 1
                kind = "sqlite3 error escaped" if isinstance(e, sqlite_errors) else type(e).__name__
                result.examples.append(f"{kind}: {str(e)[:160]} <- {repr(value)[:160]}")
            took = time.perf_counter() - start
            result.slowest_s = max(result.slowest_s, took)
            if took > HANG_S:
                result.hangs += 1
                result.examples.append(f"took {took:.1f} s <- {repr(value)[:160]}")

    (hypothesis_seed(seed_value)(attempt) if seed_value is not None else attempt)()
    return result
