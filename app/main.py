"""Ponder's entry point, frozen or not: the CLI when given arguments, otherwise the window."""
from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    # Measured: without this first, the frozen app hung on a process pool.
    multiprocessing.freeze_support()
    from app.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
