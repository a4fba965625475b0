"""`ponder serve`: the local model as an OpenAI-compatible server, until Ctrl-C."""
from __future__ import annotations

import argparse
import getpass
import signal
import sys
import threading

from engine import (SERVER_API_KEY, ApiServer, ModelService, PonderError, ServeSettings, get_secret, is_loopback,
                    set_secret)


def add_parser(sub, positive) -> None:
    serve = sub.add_parser("serve", help="serve the model to other programs (an OpenAI-compatible API)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this computer "
                       "only; any other needs --api-key-from-keychain)")
    serve.add_argument("--port", type=positive(int), default=1234)
    serve.add_argument("--model", help="a model name from `ponder models`, or a .gguf path (default: the default)")
    serve.add_argument("--parallel", type=positive(int), help="requests decoded together (default: measured on "
                       "this machine, at most 4)")
    serve.add_argument("--ctx", type=positive(int), default=4096, help="context per request in tokens (default 4096)")
    serve.add_argument("--threads", type=positive(int), help="CPU threads (default: physical cores)")
    serve.add_argument("--gpu-layers", type=int, help="layers to offload (-1 all, 0 none; default: all if a GPU)")
    serve.add_argument("--api-key-from-keychain", action="store_true",
                       help="require the API key saved with --set-api-key (Authorization: Bearer KEY)")
    serve.add_argument("--set-api-key", action="store_true", help="save the server's API key in the system "
                       "keychain (read hidden from the terminal, or a line of stdin) and exit")


def _api_key(args) -> str | None:
    if not args.api_key_from_keychain:
        return None
    key = get_secret(SERVER_API_KEY)
    if not key:
        raise PonderError("No server API key in the keychain: save one with `ponder serve --set-api-key`.")
    return key


def _save_key() -> int:
    value = getpass.getpass("server API key (input hidden): ") if sys.stdin.isatty() else sys.stdin.readline()
    if not value.strip():
        print("ponder: nothing given; nothing saved", file=sys.stderr)
        return 2
    set_secret(SERVER_API_KEY, value.strip())
    print("the server API key is saved in the system keychain")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.set_api_key:
        return _save_key()
    settings = ServeSettings(args.host, args.port, args.model, args.parallel, args.ctx, args.threads,
                             args.gpu_layers, _api_key(args))
    if not is_loopback(settings.host) and not settings.api_key:  # said before the model loads
        raise PonderError(f"Serving on {settings.host} lets other computers use this model: save an API key with "
                          "`ponder serve --set-api-key` and add --api-key-from-keychain, or keep to 127.0.0.1.")
    service = ModelService(settings)
    try:
        server = ApiServer(service, settings.host, settings.port, settings.api_key).start()
    except PonderError:
        service.close()
        raise
    print(f"serving {service.model_id} at {server.url} ({len(service.runtime.slots)} requests at once"
          f"{', API key required' if settings.api_key else ''}); Ctrl-C stops", flush=True)
    try:
        wait_for_stop()
        print("ponder: stopping the server", file=sys.stderr)
    finally:
        server.stop()
        service.close()
    return 0


def wait_for_stop(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Until Ctrl-C or SIGTERM. Both are handled here, whatever was inherited: a shell starts a background job with
    SIGINT ignored, and Python then never raises KeyboardInterrupt, so `ponder serve &` ignored `kill -INT`. The
    wait wakes twice a second, so a signal the kernel hands to another thread is still seen."""
    stop = threading.Event()
    before = {s: signal.signal(s, lambda *_: stop.set()) for s in signals}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
