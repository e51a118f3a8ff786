"""Served engines: an engine kernel started on this machine for notebooks elsewhere to reach.

Two ways in, one supervisor (:class:`Supervisor`, the engine kernel as a child process):

- ``remote-magics serve --ip IP [--port-range LO-HI] [--curve]`` (:func:`run`) starts an engine
  bound to ``IP`` on five consecutive free ports of the range and prints the line to type in a
  notebook. On an address that is not loopback it refuses to start without ``--curve``
  (CurveZMQ encryption, the server's key pair written into the connection file, which ipykernel
  reads). A notebook connects with the printed URL::

      tcp://HOST:PORT?key=HMAC_KEY[&curve=SERVER_PUBLIC_KEY_HEX]

  ``PORT`` is the shell port; iopub, stdin, control and heartbeat follow it, in that order
  (:data:`PORT_NAMES`). ``key`` signs messages; ``curve`` is the server's public key, in hex.
- ssh targets run :func:`stdio` on the remote host: it reads one JSON line of settings on stdin,
  starts the engine bound to the host's loopback, answers with one JSON line on stdout (the
  ports, or why it cannot start), reports the kernel's exit, and stops the kernel when stdin
  closes (the ssh connection went away).

Standard library only at import time (zmq only when Curve keys are made or checked), because
ssh targets ship this module as source, with protocol, serialize and engine.
"""
from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .targets import Target

#: The kernel's ports, in the order they follow the URL's port.
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
#: Modules the remote Python needs for an engine; ssh targets check them first.
REQUIRED_MODULES = ("ipykernel", "cloudpickle")
#: What stderr says when a port could not be bound (libzmq's EADDRINUSE message).
ADDRESS_IN_USE = "Address already in use"


class PortsInUse(Exception):
    """No five consecutive free ports in the requested range."""


def is_loopback(ip: str) -> bool:
    """Whether binding to ``ip`` keeps the engine off the network."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def parse_port_range(text: str | None) -> tuple[int, int]:
    """``"50000-50100"`` or ``"50000"`` → (low, high); None or ``"0"`` → (0, 0), any free ports."""
    if not text or text.strip() == "0":
        return 0, 0
    low, _, high = text.strip().partition("-")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"a port range is LOW-HIGH, such as 50000-50100, not {text!r}") from None
    if not 0 < lo <= hi < 65536 or hi - lo < len(PORT_NAMES) - 1:
        raise ValueError(f"the port range {text!r} must hold at least {len(PORT_NAMES)} ports "
                         "between 1 and 65535")
    return lo, hi


def _free(ip: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


def free_port(ip: str) -> int:
    """A port that is free on ``ip`` now (the system's choice)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def pick_ports(ip: str, low: int = 0, high: int = 0) -> dict[str, int]:
    """Five consecutive free ports on ``ip``: within ``low``-``high``, or anywhere when 0."""
    count = len(PORT_NAMES)
    if low:
        starts = range(low, high - count + 2)
    else:
        starts = [free_port(ip) for _ in range(64)]
    for start in starts:
        if start + count - 1 < 65536 and all(_free(ip, start + i) for i in range(count)):
            return {name: start + i for i, name in enumerate(PORT_NAMES)}
    taken = sorted(p for p in range(low, high + 1) if not _free(ip, p))[:10] if low else []
    raise PortsInUse(f"no {count} consecutive free ports on {ip} in {low}-{high}"
                     + (f" (in use: {', '.join(map(str, taken))})" if taken else ""))


def write_connection_file(path: str, info: dict) -> None:
    """Write ``info`` as a connection file readable by its owner only (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info, out, indent=1)


# --- the served engine's address --------------------------------------------------------------

def format_url(host: str, info: dict) -> str:
    """The ``tcp://`` URL a notebook connects with (the server's secret key is not in it)."""
    url = f"tcp://{host}:{info['shell_port']}?key={urllib.parse.quote(info['key'], safe='')}"
    if info.get("curve_publickey"):
        from zmq.utils import z85

        url += f"&curve={z85.decode(info['curve_publickey'].encode()).hex()}"
    return url


def parse_url(url: str) -> dict:
    """Connection info (the dict of a connection file) for a ``tcp://`` URL of :func:`format_url`."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise ValueError(f"a served engine's address is tcp://HOST:PORT?key=KEY, not {url!r}")
    query = {name: urllib.parse.unquote(value) for name, _, value in
             (item.partition("=") for item in parts.query.split("&") if item)}
    unknown = set(query) - {"key", "curve"}
    if unknown:
        raise ValueError(f"unknown parameter {', '.join(sorted(unknown))} in {url!r}; "
                         "the URL takes key= and curve=")
    info: dict[str, Any] = {"transport": "tcp", "ip": parts.hostname, "key": query.get("key", ""),
                            "signature_scheme": "hmac-sha256"}
    info.update({name: parts.port + i for i, name in enumerate(PORT_NAMES)})
    curve = query.get("curve")
    if curve:
        info["curve_publickey"] = _z85_key(curve)
    return info


def _z85_key(text: str) -> str:
    """A Curve public key given in hex (64 digits) or Z85 (40 characters), as Z85."""
    from zmq.utils import z85

    try:
        if len(text) == 64:
            return z85.encode(bytes.fromhex(text)).decode()
        if len(text) == 40:
            z85.decode(text.encode())
            return text
    except ValueError:
        pass
    raise ValueError("the curve= key of a served engine is 64 hex digits, as "
                     "remote-magics serve prints it")


def probe(info: dict, timeout: float) -> str:
    """How a served engine's shell port answers: ``"ok"``, ``"refused"`` or ``"unreachable"``.

    ``refused`` means a TCP connection was made but the ZeroMQ security handshake failed: the
    engine wants Curve and we have no key, or our server key is not the engine's.
    """
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    if info.get("curve_publickey"):
        sock.curve_serverkey = info["curve_publickey"].encode()
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
    monitor = sock.get_monitor_socket()
    failed = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL \
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    connected = dropped = 0
    try:
        sock.connect(f"tcp://{info['ip']}:{info['shell_port']}")
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not monitor.poll(int(left * 1000)):
                break
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return "ok"
            if event & failed:
                return "refused"
            connected += event == zmq.EVENT_CONNECTED
            dropped += event == zmq.EVENT_DISCONNECTED
            if connected and dropped >= 2:  # the peer hangs up on every handshake
                return "refused"
        return "refused" if connected else "unreachable"
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        context.term()


def connect(spec: str, name: str, *, timeout: float = 60.0) -> "Target":
    """A :class:`~remote_magics.targets.Target` on the served engine at the ``tcp://`` URL ``spec``."""
    from .client import Connection
    from .errors import ConnectionRefused, HostUnreachable, RemoteMagicsError
    from .handshake import handshake
    from .targets import Target

    try:
        info = parse_url(spec)
    except ValueError as err:
        raise RemoteMagicsError(str(err)) from None
    address = f"tcp://{info['ip']}:{info['shell_port']}"
    verdict = probe(info, min(timeout, 10.0))
    if verdict == "unreachable":
        raise HostUnreachable(address, hint="Is `remote-magics serve` running there, and is "
                              "the port in the URL the one it printed?")
    if verdict == "refused":
        raise ConnectionRefused(address, curve=bool(info.get("curve_publickey")))
    conn = Connection(info, name=name)
    target = Target(name, conn, spec=address)
    try:
        handshake(target, timeout)
    except BaseException:
        conn.close()
        raise
    return target


# --- the engine kernel process ------------------------------------------------------------------

class Supervisor:
    """The engine kernel as a child process: started, watched, stopped with its children."""

    def __init__(self, connection_file: str, *, pythonpath: str | None = None,
                 cwd: str | None = None) -> None:
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "remote_magics.engine", "-f", connection_file,
             f"--IPKernelApp.parent_handle={os.getpid()}",  # it ends if we are killed
             "--IPKernelApp.log_level=ERROR"],
            stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(), stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True,  # its own group: we stop its children too
        )
        self._copier = threading.Thread(target=self._copy_stderr, daemon=True)
        self._copier.start()

    def _copy_stderr(self) -> None:
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.stderr_tail.append(line)
            sys.stderr.write(line)
            sys.stderr.flush()

    @property
    def port_in_use(self) -> bool:
        """Whether the kernel failed because one of its ports was taken."""
        return any(ADDRESS_IN_USE in line for line in self.stderr_tail)

    def wait_listening(self, ip: str, port: int, timeout: float) -> bool:
        """Wait until the kernel has bound ``port`` (False if it exits or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _free(ip, port):
                return True
            try:
                self.process.wait(0.05)  # the pause between looks is a wait on the kernel
                return False
            except subprocess.TimeoutExpired:
                continue
        return False

    def wait(self, timeout: float | None = None) -> int:
        status = self.process.wait(timeout)
        self._copier.join(timeout=5)
        return status

    def interrupt(self) -> None:
        """SIGINT to the kernel's process group, as ipykernel's own interrupt does."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)

    def stop(self, grace: float = 5.0) -> None:
        """Stop the kernel and everything it started: SIGTERM, then SIGKILL after ``grace``."""
        if self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue


# --- ssh targets: the remote half ---------------------------------------------------------------

def _emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def stdio(settings: dict, workdir: str) -> int:
    """Run an engine for an ssh target; ``workdir`` holds the shipped package, and is removed.

    ``settings``: ``key`` (the HMAC key), ``port_range`` ("LO-HI" or null), ``cwd`` (or null
    for the home directory). Answers on stdout with one JSON line: ``{"ready": {ports}, "pid",
    "hostname", "python"}``, or ``{"error": "missing", "missing": [modules], "python"}``, or
    ``{"error": "ports", "detail"}``; then ``{"exit": status, "port_in_use": bool, "stderr"}``
    once the kernel ends. A line ``interrupt`` on stdin interrupts the kernel; closing stdin
    stops it.
    """
    import importlib.util
    import shutil

    try:
        missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            _emit({"error": "missing", "missing": missing, "python": sys.executable,
                   "version": sys.version.split()[0]})
            return 3
        try:
            ports = pick_ports("127.0.0.1", *parse_port_range(settings.get("port_range")))
        except (PortsInUse, ValueError) as err:
            _emit({"error": "ports", "detail": str(err), "hostname": socket.gethostname()})
            return 4
        info = {"transport": "tcp", "ip": "127.0.0.1", "key": settings["key"],
                "signature_scheme": "hmac-sha256", **ports}
        connection_file = os.path.join(workdir, "engine.json")
        write_connection_file(connection_file, info)
        kernel = Supervisor(connection_file, pythonpath=workdir,
                            cwd=settings.get("cwd") or os.path.expanduser("~"))
        _emit({"ready": ports, "pid": kernel.process.pid, "hostname": socket.gethostname(),
               "python": sys.executable})

        def obey() -> None:
            for line in sys.stdin:  # ends when the ssh connection closes our stdin
                if line.strip() == "interrupt":
                    kernel.interrupt()
            kernel.stop()

        threading.Thread(target=obey, daemon=True).start()
        status = kernel.wait()
        _emit({"exit": status, "port_in_use": kernel.port_in_use,
               "stderr": "".join(kernel.stderr_tail)[-4000:]})
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- remote-magics serve ------------------------------------------------------------------------

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


def run(args: argparse.Namespace) -> int:
    """``remote-magics serve``: start an engine and serve it until interrupted; the exit status."""
    if not is_loopback(args.ip) and not args.curve:
        print(f"remote-magics serve: {args.ip} is not a loopback address, so anyone who can reach "
              "it could run code here. Add --curve to encrypt with CurveZMQ (clients then need the "
              "printed server key), or bind 127.0.0.1 and reach it over ssh.", file=sys.stderr)
        return 2
    try:
        ports = pick_ports(args.ip, *parse_port_range(args.port_range))
    except (PortsInUse, ValueError, OSError) as err:
        print(f"remote-magics serve: cannot bind the engine's ports: {err}. Pick another "
              "--port-range, or stop what is using those ports.", file=sys.stderr)
        return 3
    info: dict[str, Any] = {"transport": "tcp", "ip": args.ip, "key": secrets.token_hex(32),
                            "signature_scheme": "hmac-sha256", **ports}
    if args.curve:
        import zmq

        public, secret = zmq.curve_keypair()
        info.update(curve_publickey=public.decode(), curve_secretkey=secret.decode())
    path = args.connection_file or _default_connection_file()
    write_connection_file(path, info)
    kernel = Supervisor(path)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if not kernel.wait_listening(args.ip, ports["shell_port"], timeout=60):
            print("remote-magics serve: the engine did not start"
                  + (" (another program took one of its ports)" if kernel.port_in_use else "")
                  + "; its output is above.", file=sys.stderr)
            return 1
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
        kernel.stop()
        if not args.connection_file:
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
