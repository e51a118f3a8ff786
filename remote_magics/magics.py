"""The IPython magics: parse arguments, call the Python API in :mod:`.targets`, report."""
from __future__ import annotations

import re
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Enum, Float, Integer

from . import protocol, targets
from .proxy import format_size

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}


def parse_bytes(text: str) -> int:
    """``"100000"``, ``"100kB"``, ``"1MiB"``, ``"1_000_000"`` → a byte count."""
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match and match.group(2).lower()
    if not match or unit not in _UNITS:
        raise UsageError(f"--bytes takes a size such as 100000, 500kB or 1MiB, not {text!r}")
    return int(float(match.group(1).replace("_", "")) * _UNITS[unit])


@magics_class
class RemoteMagics(Magics):
    """``%remote_connect``, ``%%remote``, ``%remote_targets``, ``%remote_disconnect``."""

    download = Enum(protocol.DOWNLOAD_POLICIES, default_value="small", config=True,
                    help="Default download policy of %%remote: all, small or none.")
    bytes = Integer(1 << 20, config=True,
                    help="With download=small, values up to this serialized size come back.")
    timeout = Float(0.0, config=True,
                    help="Default %%remote timeout in seconds; 0 means no timeout.")

    @magic_arguments()
    @argument("target", nargs="?", default=None,
              help="'local' (the default: a new engine kernel on this machine) or the path of a "
                   "running kernel's connection file.")
    @argument("--name", default=None, help="Name of the target (default: 'default').")
    @argument("--timeout", type=float, default=60.0,
              help="Seconds to wait for the kernel to start and answer (default 60).")
    @line_magic
    def remote_connect(self, line: str) -> None:
        """Connect to a remote kernel and make it the current target of %%remote."""
        args = parse_argstring(self.remote_connect, line)
        target = targets.connect(args.target, name=args.name, timeout=args.timeout)
        details = target.details
        print(f"Connected target '{target.name}': {_where(target)}, python "
              f"{details.get('python_version', '?')}.")

    @magic_arguments()
    @argument("--download", "-d", choices=protocol.DOWNLOAD_POLICIES, default=None,
              help="Which assigned values come back: all, small (default) or none; the rest "
                   "stay remote as proxies.")
    @argument("--bytes", "-b", default=None,
              help="With --download=small, the largest serialized size that comes back "
                   "(default 1MiB; accepts 100000, 500kB, 1MiB).")
    @argument("--target", "-t", default=None, help="Name of the target (default: current).")
    @argument("--timeout", type=float, default=None,
              help="Interrupt the remote cell and raise RemoteTimeout after this many seconds.")
    @cell_magic
    def remote(self, line: str, cell: str):
        """Run the cell in a remote kernel, with the notebook names it reads; bring back what it binds."""
        args = parse_argstring(self.remote, line)
        limit = parse_bytes(args.bytes) if args.bytes is not None else self.bytes
        timeout = args.timeout if args.timeout is not None else (self.timeout or None)
        if timeout is not None and timeout <= 0:
            raise UsageError("--timeout takes a positive number of seconds")
        target = targets.registry.get(args.target)
        code = self.shell.transform_cell(cell)
        run = target.run(
            code, self.shell.user_ns,
            download=args.download or self.download, bytes=limit, timeout=timeout,
            hidden=self.shell.user_ns_hidden, cell_id=self.shell.execution_count,
        )
        for note in run.notes:
            print(f"remote_magics: {note}", file=sys.stderr)
        return run.result

    @line_magic
    def remote_targets(self, line: str) -> None:
        """List the connected targets: name, kernel, alive, objects held."""
        if line.strip():
            raise UsageError("%remote_targets takes no arguments")
        if not targets.registry.targets:
            print("No targets. Connect one with %remote_connect.")
            return
        rows = [("", "name", "kernel", "alive", "objects")]
        for name, target in targets.registry.targets.items():
            alive = target.alive()
            held = str(target.info().get("objects", "?")) if alive else "-"
            current = "*" if name == targets.registry.current else ""
            rows.append((current, name, _where(target), "yes" if alive else "no", held))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

    @magic_arguments()
    @argument("name", nargs="?", default=None, help="Target to close (default: current).")
    @argument("--all", action="store_true", help="Close every target.")
    @line_magic
    def remote_disconnect(self, line: str) -> None:
        """Close a target; a kernel we started is shut down, its proxies become unusable."""
        args = parse_argstring(self.remote_disconnect, line)
        names = list(targets.registry.targets) if args.all else [targets.registry.get(args.name).name]
        for name in names:
            target = targets.registry.targets[name]
            targets.registry.remove(name)
            action = "shut down" if target.owned else "disconnected (kernel left running)"
            print(f"Target '{name}' {action}.")


def _where(target: targets.Target) -> str:
    details = target.details
    kind = "local engine" if target.owned else f"kernel {target.spec}"
    return f"{kind} pid {details.get('pid', '?')} on {details.get('hostname', '?')}"


def flush_all_releases() -> None:
    """After each notebook cell: send the releases of proxies that died during it."""
    for target in list(targets.registry.targets.values()):
        try:
            target.flush_releases()
        except Exception:  # a dead target's proxies have nothing left to release
            pass


__all__ = ["RemoteMagics", "parse_bytes", "format_size", "flush_all_releases"]
