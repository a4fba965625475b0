"""A small filesystem that fills up, and a read-only one: a size-limited tmpfs mounted under a temporary folder
and removed afterwards (needs the right to mount, as root or with CAP_SYS_ADMIN; `can_mount` says whether)."""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
from pathlib import Path


def can_mount() -> bool:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as folder:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder], capture_output=True).returncode:
            return False
        subprocess.run(["umount", folder], check=True)
    return True


@contextlib.contextmanager
def small_disk(size_bytes: int):
    """A fresh tmpfs of `size_bytes`; yields its folder, unmounts it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="ponder-small-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)], check=True,
                   capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        folder.rmdir()


def read_only(folder: Path, on: bool = True) -> None:
    """Remount the small disk read-only (EROFS even for root) or writable again."""
    subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(folder)], check=True, capture_output=True)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """A filler file that takes all but `leave_bytes` of the disk; delete it to free the space."""
    filler = folder / "filler"
    block = b"\0" * (1 << 16)
    with open(filler, "wb") as f:
        try:
            while os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize > leave_bytes + len(block):
                f.write(block)
                f.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return filler


class Words:
    """An embedder stand-in for indexing without vectors: the chunker only needs a token count."""

    path = Path("words")

    @staticmethod
    def count_tokens(text: str) -> int:
        return len(text.split())

    def close(self) -> None:
        pass


def write_docs(folder: Path, n: int = 30) -> Path:
    """`n` Markdown files of 40 paragraphs each (about 40 chunks a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"d{i}.md").write_text("\n\n".join(f"w{i}-{j} " * 40 for j in range(40)))
    return folder
