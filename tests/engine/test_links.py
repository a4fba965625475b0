"""Links in answers come from the model and from documents: only http(s), or files inside an indexed folder."""
from __future__ import annotations

import os

from engine.links import is_safe_link


def test_only_web_links_and_files_inside_indexed_folders_open(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "paper.pdf").write_bytes(b"%PDF")
    (docs / "run.sh").write_text("echo hi")
    (docs / "tool").write_text("#!/bin/sh")
    os.chmod(docs / "tool", 0o755)
    (tmp_path / "secret.txt").write_text("no")
    roots = [str(docs)]
    assert is_safe_link("https://example.org/page", roots)
    assert is_safe_link("http://example.org", roots)
    assert is_safe_link((docs / "paper.pdf").as_uri(), roots)
    refused = ["javascript:alert(1)", "file:///etc/passwd", (tmp_path / "secret.txt").as_uri(),
               (docs / "run.sh").as_uri(), (docs / "tool").as_uri(), f"file://{docs}/../secret.txt",
               "smb://server/share", "ms-msdt:/id PCWDiagnostic", "data:text/html,<script>", "https:///nohost",
               "https://user:pass@example.org", "mailto:x@example.org", "", "/etc/passwd", "paper.pdf",
               "file://otherhost/etc/passwd", "vscode://open?x"]
    assert [u for u in refused if is_safe_link(u, roots)] == []
