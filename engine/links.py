"""Which links in an answer may be opened. Answers are Markdown from the model and from documents, so from
anyone: a link opens only when clicked, and only http(s), or a file inside a folder the user indexed; never
another scheme (a `file:` program, `smb:`, an OS handler such as `ms-msdt:`), never a path outside."""
from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

SAFE_SCHEMES = ("http", "https")
# Opening these runs them (Windows, macOS, Linux desktops), wherever they lie.
RUNNABLE = {".exe", ".bat", ".cmd", ".com", ".scr", ".msi", ".ps1", ".vbs", ".vbe", ".js", ".jse", ".wsf", ".hta",
            ".lnk", ".url", ".app", ".command", ".sh", ".desktop", ".jar", ".appimage", ".run", ".pif", ".cpl"}


def is_safe_link(url: str, roots: list[str] | tuple[str, ...] = ()) -> bool:
    """True when `url` may be opened: http(s) with a host, or a file:// path inside one of `roots`."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme in SAFE_SCHEMES:
        return bool(parts.netloc) and not parts.username and not parts.password
    if scheme != "file" or parts.netloc not in ("", "localhost"):
        return False
    try:
        target = Path(urllib.parse.unquote(parts.path)).resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    for root in roots:
        try:
            base = Path(root).resolve()
        except (OSError, RuntimeError):
            continue
        if target == base or base in target.parents:
            if target.is_dir():
                return True
            return target.is_file() and target.suffix.lower() not in RUNNABLE and not os.access(target, os.X_OK)
    return False
