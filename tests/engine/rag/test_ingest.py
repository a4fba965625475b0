"""Every format to clean text, and every bad file to a reason."""
from __future__ import annotations

import pytest

from engine.errors import DocumentError
from engine.rag.ingest import html_text, parse
from tests.engine.rag.documents import write_docx, write_epub, write_pdf


def test_pdf_text_per_page(tmp_path):
    doc = parse(write_pdf(tmp_path / "a.pdf", ["Apples grow in Normandy.", "Bananas ripen in Ecuador."]))
    assert [p.number for p in doc.pages] == [1, 2]
    assert "Normandy" in doc.pages[0].text and "Ecuador" in doc.pages[1].text


def test_malformed_pdf_is_skipped_with_a_reason(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage garbage")
    with pytest.raises(DocumentError, match="could not be opened as a PDF"):
        parse(path)


def test_docx_keeps_headings_tables_and_unicode(tmp_path):
    text = parse(write_docx(tmp_path / "r.docx")).pages[0].text
    assert text.startswith("# Quarterly report")
    assert "412 ships" in text and "North | 412" in text
    assert "Smörgåsbord, naïve café and “curly quotes”" in text


def test_epub_chapters_in_spine_order_without_scripts(tmp_path):
    doc = parse(write_epub(tmp_path / "b.epub"))
    assert [p.number for p in doc.pages] == [1, 2]
    assert "tailor from Ghent" in doc.pages[0].text and "dragon slept" in doc.pages[1].text
    assert "hidden" not in doc.pages[0].text


def test_html_visible_text_only():
    text = html_text("<html><head><title>t</title><style>p{}</style></head><body><h2>Menu</h2>"
                     "<p>Soup &amp; bread</p><script>alert(1)</script><table><tr><td>a</td><td>b</td></tr></table>")
    assert "## Menu" in text and "Soup & bread" in text and "alert" not in text and "a | b" in text


def test_legacy_encoding_is_detected(tmp_path):
    path = tmp_path / "old.txt"
    path.write_bytes("Le garçon a mangé une crème brûlée à Noël, déjà très âgé.".encode("cp1252") * 5)
    assert "crème brûlée à Noël" in parse(path).pages[0].text


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"\x00\x01\x02binary\x00" * 100)
    with pytest.raises(DocumentError, match="binary"):
        parse(path)


def test_file_over_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text("x" * 5000)
    with pytest.raises(DocumentError, match="over the"):
        parse(path, max_bytes=1000)


def test_source_code_is_text(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def hello():\n    return 'world'\n")
    doc = parse(path)
    assert doc.kind == "code" and "def hello" in doc.pages[0].text
