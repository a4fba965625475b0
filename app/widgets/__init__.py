"""The main window's parts, one widget per file."""
