"""The layering, read from the source: engine/ never imports Qt, and app/ reaches the engine only through the
names `engine` exports."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_engine_never_imports_qt():
    offenders = {str(p.relative_to(ROOT)) for p in (ROOT / "engine").rglob("*.py")
                 if any(m.split(".")[0] in ("PySide6", "shiboken6") for m in imported_modules(p))}
    assert offenders == set()


def test_the_app_uses_only_what_engine_exports():
    offenders = {f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "app").rglob("*.py") for m in imported_modules(p)
                 if m.startswith("engine.")}
    assert offenders == set()
