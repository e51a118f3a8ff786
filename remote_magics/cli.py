"""The ``remote-magics`` command line (also ``python -m remote_magics``).

``install-kernel`` / ``uninstall-kernel`` / ``list`` manage the kernelspecs of :mod:`.kernel`,
``serve`` starts an engine kernel for notebooks to connect to, ``demo`` runs the quick start.
Parsing only: the work is done by the modules it calls.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .wire import protocol

PROG = "remote-magics"


def _bytes(text: str) -> int:
    from IPython.core.error import UsageError

    from .magics import parse_bytes

    try:
        return parse_bytes(text)
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"takes a positive number of seconds, not {text!r}")
    return value


def _kernel_name(text: str) -> str:
    from . import kernel

    try:
        kernel.spec_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _where(parser: argparse.ArgumentParser, verb: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--user", action="store_true",
                       help=f"{verb} the user's Jupyter data directory (the default).")
    group.add_argument("--sys-prefix", action="store_true",
                       help=f"{verb} this Python environment ({sys.prefix}).")
    group.add_argument("--prefix", metavar="P",
                       help=f"{verb} the prefix P (P/share/jupyter/kernels).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Run notebook cells in remote Jupyter kernels: kernelspecs, "
                               "served engines and the quick start.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "install-kernel", help="install a remote kernelspec (or the engine's, with --engine)",
        description="Install a kernelspec that Jupyter lists as 'Python 3 (remote: NAME)': every "
                    "cell of a notebook using it runs on TARGET as %%remote would run it. With "
                    "--engine, install the engine kernelspec instead, so a JupyterHub or a kernel "
                    "provisioner can start engines like any kernel.")
    p.add_argument("--name", type=_kernel_name, default=None,
                   help="Name of the remote kernel (default 'local'); the kernelspec is "
                        "'remote-NAME'.")
    p.add_argument("--target", default="local",
                   help="Where cells run: 'local' (a new engine kernel on this machine, the "
                        "default) or the path of a running kernel's connection file.")
    p.add_argument("--download", choices=protocol.DOWNLOAD_POLICIES, default="small",
                   help="Which assigned values come back to the notebook (default small).")
    p.add_argument("--bytes", type=_bytes, default=protocol.DEFAULT_BYTES,
                   help="With --download=small, the largest serialized size that comes back "
                        "(default 1MiB; accepts 100000, 500kB, 1MiB).")
    p.add_argument("--timeout", type=_positive, default=None,
                   help="Interrupt a cell that runs longer than this many seconds.")
    p.add_argument("--engine", action="store_true",
                   help="Install the engine kernelspec ('remote-magics-engine') instead.")
    _where(p, "Install into")
    p.set_defaults(run=_install_kernel)

    p = sub.add_parser("uninstall-kernel", help="remove a remote_magics kernelspec",
                       description="Remove a kernelspec installed by install-kernel, by its "
                                   "name (NAME or remote-NAME).")
    p.add_argument("name", help="The kernel's name, as 'remote-magics list' shows it.")
    p.add_argument("--prefix", metavar="P", help="Also look under the prefix P.")
    p.set_defaults(run=_uninstall_kernel)

    p = sub.add_parser("list", help="list the installed remote_magics kernelspecs",
                       description="List the kernelspecs installed by install-kernel that "
                                   "Jupyter finds.")
    p.add_argument("--prefix", metavar="P", help="Also look under the prefix P.")
    p.set_defaults(run=_list)

    from . import serve  # the notebook side only once it runs: cheap

    p = sub.add_parser("serve", help="start an engine kernel for notebooks to connect to",
                       description="Start an engine kernel on this machine (127.0.0.1 unless "
                                   "--ip says otherwise), print the %remote_connect line and the "
                                   "connection file that reach it, and serve until Ctrl-C.")
    serve.add_arguments(p)
    p.set_defaults(run=serve.run)

    p = sub.add_parser("demo", help="run the quick start",
                       description="Run the quick start: start an engine, run cells on it, show "
                                   "what came back.")
    p.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except Exception as err:  # one paragraph for the user, not a traceback
        from .errors import RemoteMagicsError

        if not isinstance(err, (RemoteMagicsError, OSError, ValueError, LookupError)):
            raise
        print(f"{PROG} {args.command}: {err}", file=sys.stderr)
        return 1


def _install_kernel(args: argparse.Namespace) -> int:
    from . import kernel

    prefix = sys.prefix if args.sys_prefix else args.prefix
    user = not prefix
    if args.engine:
        name = args.name or "remote-magics-engine"
        spec = kernel.engine_spec()
        kernel_name = name.lower()
    else:
        name = args.name or "local"
        kernel_name = kernel.spec_name(name)
        spec = kernel.remote_spec(name, args.target, download=args.download, bytes=args.bytes,
                                  timeout=args.timeout)
    where = kernel.install(spec, kernel_name, user=user, prefix=prefix)
    print(f"Installed kernelspec '{kernel_name}' ({spec['display_name']}) in {where}")
    if not args.engine:
        print(f"Pick '{spec['display_name']}' in JupyterLab's launcher or Kernel menu.")
    return 0


def _uninstall_kernel(args: argparse.Namespace) -> int:
    from jupyter_client.kernelspec import NoSuchKernel

    from . import kernel

    try:
        where = kernel.uninstall(args.name, prefix=args.prefix)
    except NoSuchKernel:
        print(f"{PROG} uninstall-kernel: no remote_magics kernelspec named '{args.name}'; "
              f"'{PROG} list' shows the installed ones.", file=sys.stderr)
        return 1
    print(f"Removed kernelspec {where}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from . import kernel

    specs = kernel.installed(prefix=args.prefix)
    if not specs:
        print(f"No remote_magics kernelspecs installed. Install one with: {PROG} install-kernel "
              "--name NAME --target TARGET")
        return 0
    rows = [("name", "display name", "target", "directory")]
    rows += [(s.name, s.display_name, s.target or "(engine)", s.resource_dir) for s in specs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _demo(args: argparse.Namespace) -> int:
    try:
        from . import demo
    except ImportError as err:
        raise LookupError(f"the quick start is not available ({err})") from None
    return int(demo.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
