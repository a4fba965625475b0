"""Hostile and awkward files when indexing a tree: zip bombs, deep HTML, a 100k-page PDF, symlink loops, a pipe,
an unreadable folder, a file that vanishes while being read. Each is skipped with a reason; the rest is indexed."""
from __future__ import annotations

import io
import os
import zipfile

import pytest

from bench.disk import Words
from bench.fuzz import minimal_epub
from engine.errors import DocumentError
from engine.rag import index as index_module
from engine.rag import ingest
from engine.rag.ingest import html_text, parse
from engine.rag.library import Library
from tests.engine.rag.documents import write_docx


def _zip_bomb(path, members: int = 1, size: int = 0):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip")
        for i in range(members):
            z.writestr(f"m{i}", b"\0" * size)


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "MAX_UNPACKED_BYTES", 1 << 20)
    _zip_bomb(tmp_path / "bomb.docx", size=4 << 20)  # 4 MiB of zeros in a few kB
    assert (tmp_path / "bomb.docx").stat().st_size < 20_000
    with pytest.raises(DocumentError, match="unpacks to 4 MiB.*zip bomb"):
        parse(tmp_path / "bomb.docx")
    monkeypatch.setattr(ingest, "MAX_MEMBERS", 100)
    _zip_bomb(tmp_path / "many.epub", members=300)
    with pytest.raises(DocumentError, match="holds 301 files.*zip bomb"):
        parse(tmp_path / "many.epub")


def test_a_zip_member_of_a_newer_zip_version_is_a_sentence(tmp_path):
    """Found by the long fuzzing profile: zipfile raises NotImplementedError("zip file version 25.5") when a member
    says it needs a newer zip than Python reads; that escaped as a crash."""
    data = bytearray(minimal_epub())
    central = data.index(b"PK\x01\x02")
    data[central + 6] = 255  # "version needed to extract": 25.5
    for name in ("new.epub", "new.docx"):
        (tmp_path / name).write_bytes(bytes(data))
        with pytest.raises(DocumentError, match="NotImplementedError: zip file version 25.5"):
            parse(tmp_path / name)


def test_deeply_nested_html_is_read(tmp_path):
    (tmp_path / "deep.html").write_text("<div>" * 200_000 + "bottom" + "</div>" * 200_000)
    assert parse(tmp_path / "deep.html").pages[0].text == "bottom"
    assert html_text("<b>" * 50_000 + "x") == "x"


def test_a_pdf_with_100k_pages_is_skipped_with_a_reason(tmp_path):
    n = 100_000
    parts, offsets = [b"%PDF-1.4\n"], []
    size = len(parts[0])

    def add(body: bytes) -> None:
        nonlocal size
        offsets.append(size)
        obj = b"%d 0 obj\n%s\nendobj\n" % (len(offsets), body)
        parts.append(obj)
        size += len(obj)
    add(b"<< /Type /Catalog /Pages 2 0 R >>")
    add(b"<< /Type /Pages /Count %d /Kids [%s] >>" % (n, b" ".join(b"%d 0 R" % (i + 3) for i in range(n))))
    for _ in range(n):
        add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>")
    xref = size
    parts.append(b"xref\n0 %d\n0000000000 65535 f \n" % (n + 3))
    parts.extend(b"%010d 00000 n \n" % o for o in offsets)
    parts.append(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (n + 3, xref))
    (tmp_path / "huge.pdf").write_bytes(b"".join(parts))
    with pytest.raises(DocumentError, match="100,000 pages, over the 20,000 page limit"):
        parse(tmp_path / "huge.pdf")


def test_a_pipe_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    with pytest.raises(DocumentError, match="not a regular file"):
        parse(tmp_path / "pipe.txt")


@pytest.fixture
def library(tmp_path):
    lib = Library(tmp_path / "index.sqlite3", Words())  # words for tokens: no vectors needed here
    yield lib
    lib.close()


def test_a_hostile_tree_is_indexed_around_what_cannot_be_read(tmp_path, library, monkeypatch):
    root = tmp_path / "docs"
    (root / "ok").mkdir(parents=True)
    (root / "ok" / "notes.md").write_text("Kestrels hover before they dive.\n")
    write_docx(root / "ok" / "report.docx")
    (root / "book.epub").write_bytes(minimal_epub(("<p>" + "<i>" * 5000 + "Owls fly silently.</p>",)))
    (root / "loop").symlink_to(root / "loop")  # a symlink to itself: ELOOP
    (root / "ok" / "up").symlink_to(root)  # a folder loop: not followed
    os.mkfifo(root / "ok" / "pipe.md")
    (root / "locked").mkdir()
    (root / "locked" / "secret.md").write_text("never read")
    (root / "vanishing.md").write_text("here one moment")
    _zip_bomb(root / "bomb.epub", members=3, size=4 << 20)
    monkeypatch.setattr(ingest, "MAX_UNPACKED_BYTES", 1 << 20)

    real_scandir, real_sha = os.scandir, index_module._sha256

    def scandir(path="."):  # the OSError a folder without permission gives (root reads everything)
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def sha(path):
        if path.endswith("vanishing.md"):
            os.unlink(path)  # gone between the walk and the read
        return real_sha(path)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(index_module, "_sha256", sha)
    report = library.index("hostile", [str(root)], embed=False)
    reasons = {os.path.basename(p): why for p, why in report.skipped}
    assert report.indexed == 3, reasons  # notes.md, report.docx, book.epub
    assert "Too many levels of symbolic links" in reasons["loop"]
    assert "Permission denied" in reasons["locked"]
    assert "not a regular file" in reasons["pipe.md"]
    assert "No such file" in reasons["vanishing.md"]
    assert "zip bomb" in reasons["bomb.epub"]
    assert [h for h in library.search("hostile", "owls silently", 3, "bm25")]
