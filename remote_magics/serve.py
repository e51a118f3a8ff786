"""``remote-magics serve``: an engine kernel on this machine for notebooks elsewhere to reach.

``remote-magics serve --ip IP [--port-range LO-HI] [--curve]`` (:func:`run`) starts an engine
(:class:`~remote_magics.engine.host.Supervisor`) bound to ``IP`` on five consecutive free ports
of the range and prints the line to type in a notebook. On an address that is not loopback it
refuses to start without ``--curve`` (CurveZMQ encryption, the server's key pair written into the
connection file, which ipykernel reads; the engine then admits only clients whose Curve key pair
is made from the URL's key, :mod:`remote_magics.engine.curve`). A notebook connects with the
printed URL
(:func:`remote_magics.targets.served.format_url`)::

    tcp://HOST:PORT?key=HMAC_KEY[&curve=SERVER_PUBLIC_KEY_HEX]
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
from typing import Any

from .engine.host import PortsInUse, Supervisor, is_loopback, parse_port_range, pick_ports, \
    write_connection_file
from .targets.base import RELAUNCHES
from .wire import protocol


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``remote-magics serve``."""
    parser.add_argument("--ip", default="127.0.0.1",
                        help="Address to bind (default 127.0.0.1). Any address that is not "
                             "loopback requires --curve.")
    parser.add_argument("--port-range", default=None, metavar="LO-HI",
                        help="Ports to choose from (five consecutive ones are used); default: "
                             "any free ports.")
    parser.add_argument("--curve", action="store_true",
                        help="Encrypt with CurveZMQ; clients need the server key that is printed.")
    parser.add_argument("--connection-file", default=None, metavar="PATH",
                        help="Where to write the connection file (default: Jupyter's runtime "
                             "directory).")
    parser.add_argument("--host", default=None,
                        help="The host name clients use in the printed URL (default: the --ip).")


#: How many engines ``serve`` starts, each on ports picked again, while another program takes
#: one of the ports picked free before the engine binds it: as a local target's launches.
STARTS = RELAUNCHES + 1


def run(args: argparse.Namespace) -> int:
    """``remote-magics serve``: start an engine and serve it until interrupted; the exit status."""
    if not is_loopback(args.ip) and not args.curve:
        print(f"remote-magics serve: {args.ip} is not a loopback address, so anyone who can reach "
              "it could run code here. Add --curve to encrypt with CurveZMQ (clients then need the "
              "printed server key), or bind 127.0.0.1 and reach it over ssh.", file=sys.stderr)
        return 2
    path = args.connection_file or _default_connection_file()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    # Ctrl-C stops it, as it says, even where it was started with SIGINT ignored (a shell
    # script's `&` job, a service manager), which Python keeps
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    kernel = None
    try:
        for start in range(1, STARTS + 1):
            try:
                ports = pick_ports(args.ip, *parse_port_range(args.port_range))
            except (PortsInUse, ValueError, OSError) as err:
                print(f"remote-magics serve: cannot bind the engine's ports: {err}. Pick "
                      "another --port-range, or stop what is using those ports.",
                      file=sys.stderr)
                return 3
            info = protocol.connection_info(args.ip, secrets.token_hex(32), ports)
            if args.curve:
                import zmq

                public, secret = zmq.curve_keypair()
                info.update(curve_publickey=public.decode(), curve_secretkey=secret.decode())
            write_connection_file(path, info)
            kernel = Supervisor(path)
            if kernel.wait_listening(args.ip, ports["hb_port"], timeout=60):  # bound last
                break
            # the ports were free as they were picked, and another program took one before
            # the engine bound it (it then ends at once): pick again
            if kernel.port_in_use and start < STARTS:
                kernel.stop()
                continue
            print("remote-magics serve: the engine did not start"
                  + (f" (another program took one of its ports, {STARTS} times)"
                     if kernel.port_in_use else "")
                  + "; its output is above.", file=sys.stderr)
            return 1
        from .targets.served import format_url  # the notebook side's, loaded only now

        url = format_url(args.host or args.ip, info)
        print(f"remote_magics engine (pid {kernel.process.pid}) serving on {args.ip}, ports "
              f"{ports['shell_port']}-{ports['hb_port']}"
              f"{', CurveZMQ encrypted' if args.curve else ''}.\n"
              f"Connect from a notebook with:\n    %remote_connect {url}\n"
              f"or with the connection file {path}\n"
              + (f"Server public key (Curve): {url.rsplit('curve=', 1)[1]}\n" if args.curve else "")
              + "Stop with Ctrl-C.", flush=True)
        status = kernel.wait()
        if kernel.port_in_use:
            print("remote-magics serve: the engine could not bind its ports (another program "
                  "took one); start again.", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if kernel is not None:
            kernel.stop()
        if not args.connection_file and os.path.exists(path):
            os.unlink(path)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _default_connection_file() -> str:
    from jupyter_core.paths import jupyter_runtime_dir

    directory = jupyter_runtime_dir()
    os.makedirs(directory, mode=0o700, exist_ok=True)
    return os.path.join(directory, f"remote-magics-serve-{os.getpid()}.json")


def main(argv: list[str] | None = None) -> int:
    """``python -m remote_magics.serve``: the same as ``remote-magics serve``."""
    parser = argparse.ArgumentParser(prog="remote-magics serve", description=run.__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
