"""Small real documents written by the tests: multi-page PDF, Word, EPUB, HTML."""
from __future__ import annotations

import zipfile
from pathlib import Path


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A valid PDF with one line of Helvetica text per page (byte offsets computed for the xref table)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET"
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
        content = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def write_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Quarterly report", level=1)
    d.add_paragraph("The lighthouse keeper counted 412 ships in the harbour this quarter.")
    d.add_paragraph("Smörgåsbord, naïve café and “curly quotes” survive the trip.")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Harbour", "Ships"
    table.cell(1, 0).text, table.cell(1, 1).text = "North", "412"
    d.save(str(path))
    return path


def write_epub(path: Path) -> Path:
    chapter = ("<html xmlns='http://www.w3.org/1999/xhtml'><body><h1>Chapter {n}</h1><p>{text}</p>"
               "<script>var hidden = 1;</script></body></html>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr("META-INF/container.xml",
                   "<?xml version='1.0'?><container version='1.0' xmlns='urn:oasis:names:tc:opendocument:xmlns:container'>"
                   "<rootfiles><rootfile full-path='OEBPS/content.opf' media-type='application/oebps-package+xml'/>"
                   "</rootfiles></container>")
        z.writestr("OEBPS/content.opf",
                   "<?xml version='1.0'?><package xmlns='http://www.idpf.org/2007/opf' version='3.0'><manifest>"
                   "<item id='c1' href='one.xhtml' media-type='application/xhtml+xml'/>"
                   "<item id='c2' href='two.xhtml' media-type='application/xhtml+xml'/></manifest>"
                   "<spine><itemref idref='c2'/><itemref idref='c1'/></spine></package>")
        z.writestr("OEBPS/one.xhtml", chapter.format(n=2, text="The dragon slept under the mountain of glass."))
        z.writestr("OEBPS/two.xhtml", chapter.format(n=1, text="A tailor from Ghent sewed a coat of moonlight."))
    return path
