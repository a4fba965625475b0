"""Files to text, page by page: txt, md, code, html, pdf, docx, epub. A file that cannot be read raises
DocumentError with the reason it is skipped; nothing here ever stops a whole indexing run."""
from __future__ import annotations

import posixpath
import re
import stat
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import charset_normalizer

from engine.errors import DocumentError

MAX_BYTES = 64 * 1024 * 1024
# A .docx or .epub is a zip: its members are bounded before anything is unpacked, so a zip bomb (a few kB that
# unpack to gigabytes, or a million members) is skipped with a reason instead of filling memory.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 20_000
MAX_PDF_PAGES = 20_000  # a PDF's page count costs nothing to claim; reading 100k empty pages takes minutes
TEXT = {".txt", ".md", ".markdown", ".rst", ".log", ".csv", ".tsv", ".json", ".yaml", ".yml", ".toml", ".ini",
        ".cfg", ".conf", ".tex", ".org", ".adoc"}
CODE = {".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs",
        ".go", ".rs", ".rb", ".php", ".swift", ".m", ".scala", ".sh", ".bash", ".zsh", ".ps1", ".sql", ".r",
        ".lua", ".pl", ".css", ".scss", ".xml", ".proto", ".cmake", ".mk", ".dockerfile", ".vue", ".svelte"}
HTML = {".html", ".htm", ".xhtml"}
SUPPORTED = TEXT | CODE | HTML | {".pdf", ".docx", ".epub"}


@dataclass(frozen=True, slots=True)
class Page:
    number: int | None  # 1-based page (PDF) or chapter (EPUB); None for files without pages
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    path: Path
    kind: str
    pages: tuple[Page, ...]


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED or path.name in ("Makefile", "Dockerfile", "README", "LICENSE")


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM) first, then charset detection; binary content is refused."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError(f"{name} is a binary file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    results = list(charset_normalizer.from_bytes(data))
    if not results:
        raise DocumentError(f"{name}: the text encoding could not be recognised.")
    best = results[0]
    # charset-normalizer scores Western text in cp1257 or cp1250 as well as in cp1252 ("crčme" for "crème");
    # among equally clean Latin candidates the far more common Windows-1252 is the right guess.
    latin = ("cp1250", "cp1252", "cp1257", "cp775", "latin", "iso8859", "mac_latin2", "mac_roman")
    if best.encoding.startswith(latin):
        for r in results:
            if r.encoding == "cp1252" and r.chaos <= best.chaos + 0.1:
                return str(r)
    return str(best)


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page, with line breaks where blocks end and headings marked with #."""

    BLOCKS = {"p", "div", "br", "li", "tr", "section", "article", "header", "footer", "table", "ul", "ol",
              "blockquote", "pre", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "figcaption"}
    HIDDEN = {"script", "style", "noscript", "template", "head", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n" if tag in ("p", "div", "section", "article", "table") else "\n")
            if tag[0] == "h" and tag[1:].isdigit():
                self.parts.append("#" * int(tag[1]) + " ")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag):
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _pdf(path: Path) -> tuple[Page, ...]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as e:
        reason = "it is encrypted (password protected)" if "password" in str(e).lower() else f"it is damaged ({e})"
        raise DocumentError(f"{path.name} could not be opened as a PDF: {reason}.") from None
    try:
        if len(pdf) > MAX_PDF_PAGES:
            raise DocumentError(f"{path.name} has {len(pdf):,} pages, over the {MAX_PDF_PAGES:,} page limit.")
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            pages.append(Page(i + 1, textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")))
            textpage.close()
            page.close()
        return tuple(pages)
    except pdfium.PdfiumError as e:
        raise DocumentError(f"{path.name} could not be read as a PDF: it is damaged ({e}).") from None
    finally:
        pdf.close()


def check_zip(path: Path, what: str) -> None:
    """DocumentError unless `path` is a zip whose members are few and small enough to unpack."""
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        # NotImplementedError: a member needs a newer zip version than Python reads ("zip file version 25.5")
        raise DocumentError(f"{path.name} is not a readable {what} ({type(e).__name__}: {e}).") from None
    if len(members) > MAX_MEMBERS:
        raise DocumentError(f"{path.name} holds {len(members):,} files, over the {MAX_MEMBERS:,} a {what} may have; "
                            "skipped as a possible zip bomb.")
    unpacked = sum(m.file_size for m in members)  # zipfile never unpacks past a member's declared size
    if unpacked > MAX_UNPACKED_BYTES:
        raise DocumentError(f"{path.name} unpacks to {unpacked / 2**20:,.0f} MiB, over the "
                            f"{MAX_UNPACKED_BYTES / 2**20:,.0f} MiB limit; skipped as a possible zip bomb.")


def _docx(path: Path) -> tuple[Page, ...]:
    check_zip(path, "Word document")
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as e:  # noqa: BLE001 - python-docx raises zip, XML and KeyError failures alike
        raise DocumentError(f"{path.name} is not a readable Word document ({type(e).__name__}: {e}).") from None
    lines = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style = (block.style.name if block.style is not None else "") or ""
            text = block.text.strip()
            if text:
                level = style.removeprefix("Heading ").strip()
                lines.append(("#" * int(level) + " " if level.isdigit() else "") + text)
        elif isinstance(block, Table):
            for row in block.rows:
                lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return (Page(None, "\n\n".join(lines)),)


def _epub(path: Path) -> tuple[Page, ...]:
    """Chapters in reading (spine) order; each chapter is a 'page'."""
    check_zip(path, "EPUB book")
    try:
        with zipfile.ZipFile(path) as z:
            container = ElementTree.fromstring(z.read("META-INF/container.xml"))
            opf_path = next(e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile"))
            opf = ElementTree.fromstring(z.read(opf_path))
            base = posixpath.dirname(opf_path)
            manifest = {e.get("id"): e.get("href") for e in opf.iter() if e.tag.endswith("}item")}
            spine = [e.get("idref") for e in opf.iter() if e.tag.endswith("itemref")]
            pages = []
            for idref in spine:
                href = manifest.get(idref)
                if not href:
                    continue
                markup = decode_text(z.read(posixpath.normpath(posixpath.join(base, href))), path.name)
                text = html_text(markup)
                if text:
                    pages.append(Page(len(pages) + 1, text))
            return tuple(pages)
    except (zipfile.BadZipFile, KeyError, StopIteration, ElementTree.ParseError, ValueError, TypeError,
            EOFError, NotImplementedError, RuntimeError) as e:  # RuntimeError: an encrypted member
        raise DocumentError(f"{path.name} is not a readable EPUB book ({type(e).__name__}).") from None


def parse(path: Path, max_bytes: int = MAX_BYTES) -> Document:
    """Read `path` into pages of text; DocumentError says why it was skipped."""
    try:
        st = path.stat()
    except OSError as e:
        raise DocumentError(f"{path} cannot be read: {e.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise DocumentError(f"{path.name} is not a regular file (a device, pipe or socket).")
    size = st.st_size
    if size > max_bytes:
        raise DocumentError(f"{path.name} is {size / 2**20:,.0f} MiB, over the {max_bytes / 2**20:,.0f} MiB limit.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            return Document(path, "pdf", _pdf(path))
        if suffix == ".docx":
            return Document(path, "docx", _docx(path))
        if suffix == ".epub":
            return Document(path, "epub", _epub(path))
        data = path.read_bytes()
    except OSError as e:  # unreadable, or gone or changed while being read
        raise DocumentError(f"{path} cannot be read: {e.strerror or e}.") from None
    text = decode_text(data, path.name)
    if suffix in HTML:
        return Document(path, "html", (Page(None, html_text(text)),))
    return Document(path, "code" if suffix in CODE else "text", (Page(None, text),))
