"""``omniq server``: an embedded Redis/Valkey server in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading

from omniq.cli import EXIT_FAILED, EXIT_OK, CliError


def cmd_server(args: argparse.Namespace) -> int:
    from omniq.testing.embedded import EmbeddedServer

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        srv = EmbeddedServer(kind=args.kind, port=args.port, data_dir=args.dir,
                             appendonly=args.appendonly == "yes")
        srv.start()
        try:
            print(f"{srv.kind} {srv.version} (pid {srv.pid}) listening on {srv.url}",
                  flush=True)
            print(f"export OMNIQ_REDIS_URL={srv.url}", flush=True)
            # wake twice a second to notice a server that exited on its own
            while not stop.wait(0.5):
                if not srv.running:
                    raise CliError("the server exited unexpectedly", EXIT_FAILED)
        finally:
            srv.stop()
        print("server stopped", flush=True)
        return EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
