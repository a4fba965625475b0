"""`ponder models pull|rm|catalog|token`: downloading models and the hub token (kept in the keychain)."""
from __future__ import annotations

import getpass
import json
import sys
from dataclasses import asdict

from engine import HUB_TOKEN, Registry, RemoteEndpoint, delete_secret, load_catalog, pull_model, set_secret


def add_parsers(msub) -> None:
    pull = msub.add_parser("pull", help="download a model: REPO/FILE.gguf from the hub (PONDER_HUB), or a URL")
    pull.add_argument("ref")
    pull.add_argument("--sha256", help="expected sha256 (the hub's metadata is used when not given)")
    rm = msub.add_parser("rm", help="delete a downloaded model file from the models folder")
    rm.add_argument("name")
    catalog = msub.add_parser("catalog", help="models Ponder suggests, and whether each fits this computer")
    catalog.add_argument("--json", action="store_true")
    token = msub.add_parser("token", help="save the hub token (or a remote server's API key) in the system keychain")
    token.add_argument("--clear", action="store_true", help="remove it")
    token.add_argument("--remote", metavar="URL", help="the API key of this OpenAI-compatible server instead")


def cmd_pull(args, on_progress, is_cancelled) -> int:
    path = pull_model(args.ref, args.sha256, on_progress, is_cancelled)
    entry = Registry().find(str(path))
    facts = f" ({entry.info.architecture}, {entry.info.size_label}, {entry.info.quantization})" if entry.info else ""
    print(f"downloaded {path.name}{facts}; `ponder ask --model {entry.name} …` uses it")
    return 0


def cmd_rm(args) -> int:
    Registry().remove(args.name)
    return 0


def cmd_catalog(args) -> int:
    entries = load_catalog()
    rows = [{**asdict(e), "ref": e.ref, "fits": fits, "fit": why} for e in entries for fits, why in [e.fits()]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:30} {r['kind']:9} {r['size_mb']:>7,} MB  {r['quantization']:7} {r['licence']:20} "
              f"{r['fit']}\n    ponder models pull {r['ref']}")
    return 0


def cmd_token(args) -> int:
    name, what = (RemoteEndpoint(args.remote).secret_name, f"API key for {args.remote}") if args.remote \
        else (HUB_TOKEN, "hub token")
    if args.clear:
        delete_secret(name)
        print(f"the {what} was removed from the keychain")
        return 0
    value = getpass.getpass(f"{what} (input hidden): ") if sys.stdin.isatty() else sys.stdin.readline()
    if not value.strip():
        print("ponder: nothing given; nothing saved", file=sys.stderr)
        return 2
    set_secret(name, value.strip())
    print(f"the {what} is saved in the system keychain")
    return 0
