"""The IPython magics: parse arguments, call the Python API (:mod:`.connecting`, :mod:`.targets`,
:mod:`.jobs`, :mod:`.pool`, ...), report."""
from __future__ import annotations

import argparse
import keyword
import re
import shlex
import sys
import time
from typing import Any, Callable

import IPython
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Enum, Float, Integer, List, Unicode

from . import channels, connecting, jobs, packages, pool, targets
from .cells import capture, display, runner
from .cells.proxy import RemoteObject, format_size, owner_of, why_remote
from .client import handshake
from .engine import settings
from .errors import CellSyntaxError, ProxyError, RemoteError, RemoteTimeout
from .wire import protocol

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}


#: Lines parsed before, by magic: a notebook re-runs the same few (argparse takes 8 µs a line).
_parsed: dict[tuple[str, str], argparse.Namespace] = {}
_PARSED_KEPT = 256


def parse_arguments(magic, line: str):
    """``parse_argstring`` for one of our magics, with every malformed line a UsageError.

    shlex's own complaint (an unterminated quote) would otherwise surface as a ValueError.
    A line parsed before gives a fresh copy of its arguments (lists copied too).
    """
    key = (getattr(magic, "__qualname__", repr(magic)), line)
    parsed = _parsed.get(key)
    if parsed is None:
        try:
            parsed = parse_argstring(magic, line)
        except ValueError as err:
            raise UsageError(f"cannot read the arguments {line.strip()!r}: {err} (quote a "
                             "value that holds spaces, and close every quote)") from None
        if len(_parsed) >= _PARSED_KEPT:
            _parsed.clear()
        _parsed[key] = parsed
    return argparse.Namespace(**{name: list(value) if isinstance(value, list) else value
                                 for name, value in vars(parsed).items()})


def parse_bytes(text: str) -> int:
    """``"100000"``, ``"100kB"``, ``"1MiB"``, ``"1_000_000"`` → a byte count."""
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match and match.group(2).lower()
    if not match or unit not in _UNITS:
        raise UsageError(f"--bytes takes a size such as 100000, 500kB or 1MiB, not {text!r}")
    return int(float(match.group(1).replace("_", "")) * _UNITS[unit])


_SECONDS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``"3600"``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"`` → seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match and match.group(2).lower()
    if not match or unit not in _SECONDS or float(match.group(1)) <= 0:
        raise UsageError(f"--idle-timeout takes a duration such as 3600, 90s, 30m, 12h or 1d, "
                         f"not {text!r}")
    return float(match.group(1)) * _SECONDS[unit]


def format_duration(seconds: float) -> str:
    """``12.3 s``, ``4 min 05 s``, ``2 h 03 min``, ``1 d 02 h``."""
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"


def _clock(when: float | None) -> str:
    if not when:
        return "-"
    today = time.strftime("%Y-%m-%d")
    stamp = time.localtime(when)
    return time.strftime("%H:%M:%S" if time.strftime("%Y-%m-%d", stamp) == today
                         else "%Y-%m-%d %H:%M", stamp)


#: Where IPython syntax can start: help marks, escapes at a line's start, prompts, `a = %m`/`a = !c`.
_IPYTHON_SYNTAX = re.compile(r"\?|^[ \t]*(?:[%!,;/]|>>>|\.\.\.|In \[)|=[ \t]*[%!]", re.MULTILINE)


def _lines(text: str) -> list[str]:
    """``text``'s lines without their trailing whitespace, and without blank ones at its ends."""
    return [line.rstrip() for line in text.strip("\r\n \t").splitlines()]


#: IPython prints an error with an exception group in it with Python's own formatter, to
#: stderr, from 8.15 on (its own form cannot show a group's members).
PRINTS_GROUPS = tuple(IPython.version_info[:2]) >= (8, 15)


class PrintedRemoteErrors:
    """The shell's handler of ``custom_exceptions`` while remote_magics is loaded (installed by
    :func:`show_printed_remote_errors`): a remote error that IPython would print as Python does
    (an exception group) is printed as it was where it ran, with the cell's frames, not the
    magic's; any other error goes where it went before (a handler the user set, else IPython's
    own ``showtraceback``)."""

    def __init__(self, shell) -> None:
        self.shell = shell
        self.before = (shell.custom_exceptions, shell.CustomTB)

    def __call__(self, etype, value, tb, tb_offset=None) -> None:
        if isinstance(value, RemoteError) and value.printed and PRINTS_GROUPS:
            # as IPython's showtraceback does for such an error: sys.last_*, the text on
            # stderr (no error message), the debugger if %pdb is on
            sys.last_type, sys.last_value, sys.last_traceback = etype, value, tb
            if sys.version_info >= (3, 12):
                sys.last_exc = value
            sys.stderr.write(value.printed)
            if self.shell.call_pdb:
                self.shell.debugger(force=True)
        elif self.before[0] and isinstance(value, self.before[0]):
            self.before[1](etype, value, tb, tb_offset=tb_offset)
        else:
            self.shell.showtraceback(running_compiled_code=True)


def show_printed_remote_errors(shell) -> None:
    """Put a :class:`PrintedRemoteErrors` in front of the shell's custom exception handler
    (once); the user's own, if any, still handles its exceptions."""
    if not isinstance(getattr(shell, "CustomTB", None), PrintedRemoteErrors) \
            and isinstance(getattr(shell, "custom_exceptions", None), tuple):
        handler = PrintedRemoteErrors(shell)
        shell.CustomTB = handler
        shell.custom_exceptions = (*handler.before[0], RemoteError)


def stop_showing_printed_remote_errors(shell) -> None:
    """Undo :func:`show_printed_remote_errors` (unless another handler was set since)."""
    handler = getattr(shell, "CustomTB", None)
    if isinstance(handler, PrintedRemoteErrors):
        shell.custom_exceptions, shell.CustomTB = handler.before


class AsyncChecks:
    """The shell's ``should_run_async``, counting how many times it was asked about the cell
    that runs now (installed by ``%load_ext``, :func:`count_async_checks`).

    Each time IPython asks whether a cell awaits, it compiles the cell (as ``<>``), and the
    compiler's warnings (``"is" with a literal``, ``assertion is always true``) show each time:
    ipykernel asks twice before a plain cell runs, IPython's terminal once. A ``%%remote``
    cell's body was never asked about, so the magic asks as many times itself
    (:meth:`ask_for`): the notebook shows the same lines a plain cell shows before it runs.
    """

    def __init__(self, original: Callable[..., bool]) -> None:
        self.original = original
        self.cell: str | None = None
        self.count = 0

    def __call__(self, raw_cell: str, **options) -> bool:
        if raw_cell is self.cell or raw_cell == self.cell:
            self.count += 1
        else:
            self.cell, self.count = raw_cell, 1
        return self.original(raw_cell, **options)

    def forget(self, *_: object) -> None:
        """After each cell (``post_run_cell``): the next one counts from none, even when it is
        the same text run again."""
        self.cell, self.count = None, 0

    def typed(self, body: str) -> str:
        """``body`` as the user typed it: the running cell after its magic line (IPython hands
        a cell magic its body with a newline added); ``body`` itself when unsure."""
        if self.cell is None:
            return body
        rest = self.cell.lstrip("\r\n").partition("\n")[2]
        # IPython hands the body on with its whitespace-only lines emptied (hunt 19 H19-41:
        # the file a function of such a cell was named by differed from the plain cell's), and
        # cleaned as part of the whole cell, where its own indent is not taken off before a
        # doctest prompt is (`   >>> a = 1\n   b = 2` gave `a = 1\n   b = 2`: hunt 34 H34-5)
        return rest if _lines(rest) == _lines(body) or self._cleaned_body() == body else body

    def _cleaned_body(self) -> str | None:
        """The running cell magic's body as IPython's cleanup of the whole cell leaves it."""
        manager = getattr(getattr(self.original, "__self__", None), "input_transformer_manager",
                          None)
        if manager is None or self.cell is None:
            return None
        try:
            cell = self.cell if self.cell.endswith("\n") else self.cell + "\n"  # as IPython
            lines = cell.splitlines(keepends=True)
            for step in manager.cleanup_transforms:
                lines = step(lines)
        except Exception:  # noqa: BLE001 - IPython refuses it: the body as given then
            return None
        return "".join(lines[1:]) if lines and lines[0].startswith("%%") else None

    def ask_for(self, body: str, code: str) -> None:
        """Ask about ``body`` (as Python: ``code``) as often as the running cell was asked
        about: its compile-time warnings show in the notebook, as many times as plainly."""
        if self.cell is None or body.strip() not in self.cell:  # not asked about this cell:
            return                                               # a run_cell_magic call, say
        for _ in range(self.count):
            try:
                self.original(body, transformed_cell=code)
            except Exception:  # noqa: BLE001 - IPython's own check; the run reports the cell
                return


#: What a plain cell that may set a class's attribute has in its text (``pd.Series.x = f``,
#: ``setattr(...)``, ``del C.x``, a pandas accessor's decorator): only those are analysed.
_MAY_SET_CLASS_ATTRIBUTES = re.compile(
    r"setattr\(|_accessor\b|^[ \t]*(?:del[ \t]+)?[A-Za-z_]\w*(?:\.\w+)+[ \t]*(?:[-+*/|&]?=[^=]|$)",
    re.MULTILINE)


def watch_class_attributes(result: Any) -> None:
    """After a plain cell (``post_run_cell``): the attributes it may have set on a library's
    classes (``pd.Series.total = f``, a pandas accessor) are watched as settings, so that the
    engines' classes take them with the next run, as one process has one class."""
    raw = getattr(getattr(result, "info", None), "raw_cell", None)
    if not isinstance(raw, str) or not _MAY_SET_CLASS_ATTRIBUTES.search(raw) \
            or raw.lstrip().startswith("%%remote"):  # a remote cell's: the run sees to them
        return
    from IPython import get_ipython

    shell = get_ipython()
    try:
        cell = capture.analyze(python_of(shell, raw), capture.future_flags(shell))
        settings.watch_class_attributes(runner.library_class_attributes(cell, shell.user_ns))
    except Exception:  # noqa: BLE001 - a cell that does not parse sets nothing
        return


#: How a library's error names a proxy it was given (``pd.concat``: "cannot concatenate object
#: of type '<class 'remote_magics.cells.proxy.RemoteObject'>'", seaborn, json, ``isinstance``).
_NAMES_A_PROXY = re.compile(r"\bRemote(?:Object|Callable|Code|Iterating)\b")


def explain_proxy_errors(result: Any) -> None:
    """After a plain cell (``post_run_cell``) that failed because a library was given a proxy
    where it needs the value (``pd.concat([df, df])``, ``sns.histplot(data=df)`` of a frame
    that stayed remote: hunt 19 H19-32): say under the traceback which names are proxies, why
    they stayed remote, and what to do."""
    err = getattr(result, "error_in_exec", None)
    raw = getattr(getattr(result, "info", None), "raw_cell", None)
    if err is None or isinstance(err, (RemoteError, ProxyError)) or not isinstance(raw, str) \
            or raw.lstrip().startswith("%%remote") or not _NAMES_A_PROXY.search(str(err)):
        return
    from IPython import get_ipython

    shell = get_ipython()
    namespace = getattr(shell, "user_ns", None) or {}
    named = [name for name in dict.fromkeys(re.findall(r"[A-Za-z_]\w*", raw))
             if isinstance(namespace.get(name), RemoteObject)]
    if not named:
        return
    which = "; ".join(f"'{name}' is a proxy of a remote {namespace[name].type_name}: "
                      f"{why_remote(namespace[name])}" for name in named[:5])
    example = named[0]
    print(f"remote_magics: {which}. Code that needs the value itself (pandas' concat or merge, "
          f"seaborn, json, isinstance) cannot take a proxy. Give it the value, "
          f"{example}.fetch() (or {example} = {example}.fetch() once), or do this step in a "
          "%%remote cell, or bring such values back with %%remote --download=all or a bigger "
          "--bytes.", file=sys.stderr)


def count_async_checks(shell) -> None:
    """Put an :class:`AsyncChecks` in front of ``shell.should_run_async`` (once)."""
    if not isinstance(getattr(shell, "should_run_async", None), AsyncChecks) \
            and callable(getattr(shell, "should_run_async", None)):
        checks = shell.should_run_async = AsyncChecks(shell.should_run_async)
        shell.events.register("post_run_cell", checks.forget)


def stop_counting_async_checks(shell) -> None:
    """Undo :func:`count_async_checks`."""
    checks = shell.__dict__.get("should_run_async")
    if isinstance(checks, AsyncChecks):
        del shell.should_run_async
        if checks.forget in shell.events.callbacks["post_run_cell"]:
            shell.events.unregister("post_run_cell", checks.forget)


def python_of(shell, cell: str) -> str:
    """The cell body as the Python that IPython would run (``%magic`` and ``!cmd`` turned into calls).

    IPython's transform tokenizes the whole body in Python, about 30 µs a line (16 ms for 500
    lines). A body where no line can hold IPython syntax, under IPython's own transformers
    only, is already Python and skips that; a one-line body still gets IPython's dynamic
    transforms (automagic: ``pwd`` means ``%pwd``), as ``transform_cell`` gives it.
    """
    manager = shell.input_transformer_manager
    plain = (
        not cell.lstrip("\r\n")[:1].isspace() and not shell.input_transformers_post
        and all(getattr(step, "__module__", "") == "IPython.core.inputtransformer2"
                for steps in (manager.cleanup_transforms, manager.line_transforms,
                              manager.token_transformers) for step in steps)
        and not _IPYTHON_SYNTAX.search(cell)
    )
    if not plain:
        return shell.transform_cell(cell)
    if len(cell.splitlines()) == 1:
        first = cell.split(None, 1)[:1]
        if first and keyword.iskeyword(first[0]):  # `pass`, `import x`: nothing to prefilter
            return cell.removesuffix("\n") + "\n"  # as prefilter_lines gives it
        with shell.builtin_trap:
            return shell.prefilter_manager.prefilter_lines(cell) + "\n"
    return cell


@magics_class
class RemoteMagics(Magics):
    """``%remote_connect``, ``%%remote``, ``%remote_targets``, ``%remote_disconnect``."""

    download = Enum(protocol.DOWNLOAD_POLICIES, default_value="small", config=True,
                    help="Default download policy of %%remote: all, small or none.")
    bytes = Integer(protocol.DEFAULT_BYTES, config=True,
                    help="With download=small, values up to this serialized size come back.")
    timeout = Float(0.0, config=True,
                    help="Default %%remote timeout in seconds; 0 means no timeout.")
    pip_options = List(Unicode(), config=True,
                       help="Options for the pip install of %%remote --packages, e.g. "
                            "['--index-url', 'https://mirror/simple'].")
    idle_timeout = Float(protocol.IDLE_TIMEOUT, config=True,
                         help="Seconds a persistent engine (--persist) stays up idle, with no "
                              "client and no job, before it ends (default a day).")
    fetch_on_first_use = Bool(True, config=True,
                              help="A name a %%remote cell reads that its analysis did not see "
                                   "(eval of a computed string, exec of a file) is fetched from "
                                   "the notebook when the cell first reads it, instead of a "
                                   "NameError.")
    job_output_lines = Integer(protocol.JOB_OUTPUT_LINES, config=True,
                               help="Lines of output a detached job keeps in its engine (the "
                                    "newest).")

    @magic_arguments()
    @argument("target", nargs="?", default=None,
              help="'local' (the default: a new engine kernel on this machine) or the path of a "
                   "running kernel's connection file.")
    @argument("--name", default=None, help="Name of the target (default: 'default').")
    @argument("--timeout", type=float, default=60.0,
              help="Seconds to wait for the kernel to start and answer (default 60).")
    @argument("--restart", metavar="NAME", default=None,
              help="Restart the kernel of target NAME (one we started); its proxies are lost.")
    @argument("--python", default=None,
              help="The Python that runs the engine: for local targets (also with -n) another "
                   "interpreter or environment on this machine (default: this one); for ssh:// "
                   "targets the host's (default python3). It needs ipykernel and cloudpickle.")
    @argument("--ssh-config", default=None, metavar="FILE",
              help="ssh:// targets: an ssh config file to use instead of ~/.ssh/config.")
    @argument("--ssh-option", action="append", default=[], metavar="OPTION",
              help="ssh:// targets: an ssh -o option, such as ProxyJump=bastion (repeatable).")
    @argument("--port-range", default=None, metavar="LO-HI",
              help="ssh:// targets: ports the engine may bind on the host (default: any).")
    @argument("--sync-path", default=None, metavar="DIR",
              help="Mirror DIR's Python files to the target (before each run), so cells can "
                   "import them by name.")
    @argument("-n", type=int, default=None,
              help="Start N kernels as one pool (members NAME[0], NAME[1], ...; default name "
                   "'pool'); with dask://SCHEDULER:PORT, one kernel per worker, at most N.")
    @argument("--persist", action="store_true",
              help="local, ssh:// and tcp:// targets: an engine that outlives this notebook and "
                   "its ssh connection; connecting again by the same target and --name (from "
                   "any notebook) reaches it. It ends after --idle-timeout, or with "
                   "%%remote_disconnect NAME --shutdown.")
    @argument("--idle-timeout", default=None, metavar="DURATION",
              help="With --persist: how long the engine stays up with no client and no job "
                   "(3600, 90s, 30m, 12h, 1d; default a day).")
    @line_magic
    def remote_connect(self, line: str):
        """Connect to a remote kernel and make it the current target of %%remote.

        A pool (``-n``) becomes the current target only when there was none.
        """
        args = parse_arguments(self.remote_connect, line)
        if args.timeout <= 0:
            raise UsageError("--timeout takes a positive number of seconds (the time the kernel "
                             f"gets to start and answer), not {args.timeout:g}")
        if args.restart is not None:
            self._restart(args.restart, args.timeout)
            return
        if args.idle_timeout is not None and not args.persist:
            raise UsageError("--idle-timeout goes with --persist")
        idle_timeout = parse_duration(args.idle_timeout) if args.idle_timeout is not None else (
            self.idle_timeout if self.idle_timeout != protocol.IDLE_TIMEOUT else None)
        ssh_options = [*(["-F", args.ssh_config] if args.ssh_config else []),
                       *(f"-o{option}" for option in args.ssh_option)]
        target = connecting.connect(args.target, name=args.name, timeout=args.timeout, n=args.n,
                                    python=args.python, ssh_options=ssh_options,
                                    port_range=args.port_range, sync_path=args.sync_path,
                                    persist=args.persist, idle_timeout=idle_timeout)
        if isinstance(target, pool.Pool):
            current = targets.registry.current
            where = "a member of it" if current in {m.name for m in target} else "unchanged"
            print(f"Connected pool '{target.name}' of {len(target)}: "
                  + ", ".join(f"{m.name} ({_where(m)})" for m in target)
                  + f". The current target is '{current}' ({where}); use --targets "
                  f"{target.name} to run a cell on every member.")
            for note in dict.fromkeys(handshake.version_note(m.details, target.name)
                                      for m in target):
                if note:
                    print(note)
            return target
        details = target.details
        if target.persistent is None:
            print(f"Connected target '{target.name}': {_where(target)}, python "
                  f"{details.get('python_version', '?')}.")
        elif target.reconnected:
            print(f"Reconnected target '{target.name}' to its {_where(target)} (started "
                  f"{_clock(target.persistent.get('started'))}); {_jobs_summary(target)}.")
        else:
            print(f"Connected target '{target.name}': {_where(target)}, python "
                  f"{details.get('python_version', '?')}. It outlives this notebook and ends "
                  f"after {format_duration(target.persistent['idle_timeout'])} idle (no client, "
                  f"no job), or with %remote_disconnect {target.name} --shutdown.")
        note = handshake.version_note(details, target.name)
        if note:
            print(note)

    def _restart(self, name: str, timeout: float) -> None:
        target = targets.registry.get(name)
        lost = sorted(key for key, value in self.shell.user_ns.items()
                      if isinstance(value, RemoteObject) and owner_of(value) is target
                      and not _output_history(key))
        target.restart(timeout=timeout)
        print(f"Restarted target '{target.name}': {_where(target)}.")
        if lost:
            print(f"These proxies pointed into the old kernel and are lost: {', '.join(lost)}.")

    @magic_arguments(name="%remote")  # a cell magic: its usage line reads %%remote
    @argument("--download", "-d", choices=protocol.DOWNLOAD_POLICIES, default=None,
              help="Which assigned values come back: all, small (default) or none; the rest "
                   "stay remote as proxies.")
    @argument("--bytes", "-b", default=None,
              help="With --download=small, the largest serialized size that comes back "
                   "(default 1MiB; accepts 100000, 500kB, 1MiB).")
    @argument("--target", "-t", default=None, help="Name of the target (default: current).")
    @argument("--targets", default=None,
              help="Run on several targets in parallel: a pool's name, 'all', or names "
                   "separated by commas (pool[0],other). Each bound name comes back as a list.")
    @argument("--scatter", action="append", default=[], metavar="NAME",
              help="With --targets: split the sequence NAME into one chunk per target.")
    @argument("--gather", action="append", default=[], metavar="NAME",
              help="With --targets: join the targets' values of NAME back into one, in order.")
    @argument("--timeout", type=float, default=None,
              help="Interrupt the remote cell and raise RemoteTimeout after this many seconds.")
    @argument("--packages", default=None, metavar="REQS",
              help="Requirements to pip install in the target first, once per target: "
                   "\"pytz>=2023,numpy\".")
    @argument("--async", dest="run_async", action="store_true",
              help="Return at once with a job (a concurrent.futures.Future); job.result() "
                   "brings the cell's names back. Jobs on one target run in order.")
    @argument("-o", "--job", dest="job_name", default=None, metavar="NAME",
              help="With --async: the notebook name of the job (default _remote_job).")
    @argument("--detach", action="store_true",
              help="Run the cell as a detached job in the engine (implies --async): it keeps "
                   "running when this notebook goes away, keeps its output and the names it "
                   "binds until collected; a new notebook gets it back with %%remote_job N.")
    @argument("--save", action="store_true",
              help="With --detach on a persistent target: also write the job's names to disk "
                   "on its host when it finishes, so an engine crash afterwards loses nothing.")
    @argument("--channel", default=None, metavar="NAME",
              help="Give the cell and the notebook a channel called NAME (send, receive).")
    @argument("--quiet", "-q", action="store_true",
              help="No progress bars and no 'waiting for its turn' note.")
    @cell_magic
    def remote(self, line: str, cell: str):
        """Run the cell in a remote kernel, with the notebook names it reads; bring back what it binds."""
        args = parse_arguments(self.remote, line)
        limit = parse_bytes(args.bytes) if args.bytes is not None else self.bytes
        timeout = args.timeout if args.timeout is not None else (self.timeout or None)
        if timeout is not None and timeout <= 0:
            raise UsageError("--timeout takes a positive number of seconds")
        if args.save and not args.detach:
            raise UsageError("--save goes with --detach")
        if args.detach and (args.channel or args.timeout is not None):
            raise UsageError("a detached job has no --channel and no --timeout (it outlives "
                             "the notebook); stop it with job.cancel()")
        if args.targets is not None or args.scatter or args.gather:
            if args.run_async or args.channel or args.detach:
                raise UsageError("--async, --detach and --channel run on one target; they "
                                 "cannot be combined with --targets, --scatter or --gather")
            return self._fan_out(args, cell, limit, timeout)
        target = targets.registry.get(args.target)
        if args.packages:
            packages.ensure(target, packages.parse_requirements(args.packages.strip("\"'")),
                            pip_options=self.pip_options)
        code = self._python(cell)
        if args.channel:
            self.shell.user_ns[args.channel] = channels.Channel(target)
        if args.detach:
            self.shell.user_ns[args.job_name or "_remote_job"] = jobs.detach(
                target, code, self.shell.user_ns, download=args.download or self.download,
                bytes=limit, hidden=self.shell.user_ns_hidden, cell_id=self.shell.execution_count,
                save=args.save, output_lines=self.job_output_lines, show=True, quiet=args.quiet)
            return None
        if args.run_async:
            self.shell.user_ns[args.job_name or "_remote_job"] = jobs.submit(
                target, code, self.shell.user_ns, download=args.download or self.download,
                bytes=limit, timeout=timeout, hidden=self.shell.user_ns_hidden,
                cell_id=self._cell_number(), show=True, quiet=args.quiet)
            return None
        target.wait_for_jobs(quiet=args.quiet)
        with channels.closing_after_run(), \
                display.watching(quiet=args.quiet, target=target.name) as watch:
            try:
                run = target.run(
                    code, self.shell.user_ns,
                    download=args.download or self.download, bytes=limit, timeout=timeout,
                    hidden=self.shell.user_ns_hidden, cell_id=self._cell_number(),
                    on_output=watch.on_output, on_progress=watch.on_progress,
                    quiet=args.quiet, show_result=True, lookup=self.fetch_on_first_use,
                )
            except UsageError as err:  # a magic's misuse there: IPython's one line, as plainly
                if isinstance(err, RemoteError) and type(err) is not UsageError:
                    raise UsageError(err.evalue) from None
                raise
        run.print_notes()
        if run.display is not None and run.result is not None:
            show_as(self.shell, run.result, run.display, target.name)
        after = watch.held_back()
        if after is not None:  # its figures: after the result IPython shows now, as plainly
            self._after_this_cell(after, shown_first=run.result is not None)
        return run.result

    def _after_this_cell(self, show: Callable[[], None], shown_first: bool) -> None:
        """``show`` once the result is shown (at this cell's post-execute, where a plain cell
        shows its figures); at once when there is no result."""
        if not shown_first:
            show()
            return
        events = self.shell.events

        def post_execute() -> None:
            events.unregister("post_execute", post_execute)
            show()

        events.register("post_execute", post_execute)

    def _python(self, cell: str) -> str:
        """The cell body as Python (:func:`python_of`); a :class:`CellSyntaxError` shown as a
        plain cell's syntax error (``Cell In[7], line 1``, the line, a caret) when it does not
        parse, before anything is sent."""
        checks = getattr(self.shell, "should_run_async", None)
        typed = checks.typed(cell) if isinstance(checks, AsyncChecks) else cell
        code = python_of(self.shell, typed)  # as a plain cell of that text would run
        if isinstance(checks, AsyncChecks):
            checks.ask_for(cell, code)
            runner.typed_as(code, typed)  # its file is named as a plain cell's
        try:
            capture.analyze(code, capture.future_flags(self.shell))
        except SyntaxError as caught:
            err = caught
        else:
            return code
        # out of the handler: IPython's own error (below) must not chain to this one
        filename = self.shell.compile.cache(code, self._cell_number())  # labelled In[number]
        err = self._tokenizer_refuses(typed) or self._as_ipython_refuses(code, filename, err)
        lines = self.shell.SyntaxTB.structured_traceback(type(err), err, [])
        raise CellSyntaxError.of(err, lines) from None

    def _tokenizer_refuses(self, typed: str) -> SyntaxError | None:
        """The error IPython's transform of the cell's text raises before it compiles anything
        (a bad unindent: ``IndentationError: ... (<tokenize>, line 3)``), which a plain cell
        shows; None when it transforms (hunt 34 H34-5: the compiler's error named the file)."""
        try:
            self.shell.input_transformer_manager.transform_cell(typed)
        except SyntaxError as theirs:
            return theirs
        except Exception:  # noqa: BLE001 - not a syntax error: the compiler's then
            return None
        return None

    def _as_ipython_refuses(self, code: str, filename: str, err: SyntaxError) -> SyntaxError:
        """The error IPython's own compiler gives ``code``, which a plain cell shows: it parses
        with its flags (``SyntaxError: incomplete input`` for a cell that ends inside a bracket
        or a block, where Python alone says ``'(' was never closed`` or raises an
        IndentationError: hunt 30 H30-5); ``err`` itself if that compiler takes the code."""
        parse = getattr(self.shell.compile, "ast_parse", None)
        if callable(parse):
            try:
                parse(code, filename=filename)
            except SyntaxError as theirs:
                return theirs
            except Exception:  # noqa: BLE001 - another compiler's trouble: Python's error
                pass
        err.filename = filename
        return err

    def _cell_number(self) -> int:
        """The running cell's number N (its ``In[N]``), which names it in remote tracebacks.

        IPython 9 counts the cell before running it, IPython 8 after; the number its ``Out[N]``
        would get is the cell's own in both.
        """
        return self.shell.displayhook.prompt_count

    def _fan_out(self, args, cell: str, limit: int, timeout: float | None):
        if args.targets is None:
            raise UsageError("--scatter and --gather need --targets (a pool, 'all' or a,b,c)")
        if args.target is not None:
            raise UsageError("give either --target (one) or --targets (several), not both")
        fan = pool.run_on(
            pool.resolve(args.targets), self._python(cell), self.shell.user_ns,
            download=args.download or self.download, bytes=limit, timeout=timeout,
            hidden=self.shell.user_ns_hidden, cell_id=self._cell_number(),
            scatter=_names(args.scatter), gather=_names(args.gather))
        for run in fan.runs:
            run.print_notes(run.target)
        return fan.result

    @magic_arguments()
    @argument("func", help="Name of the function in the notebook.")
    @argument("items", help="Name of the iterable in the notebook.")
    @argument("--targets", default=None,
              help="A pool's name, 'all' or names separated by commas (default: the only pool).")
    @argument("--chunksize", type=int, default=None,
              help="Items sent per request (default: about four chunks per target).")
    @argument("--timeout", type=float, default=None, help="Seconds allowed per chunk.")
    @argument("--no-progress", action="store_true", help="Do not show a progress bar.")
    @line_magic
    def remote_map(self, line: str):
        """``results = %remote_map func items``: func over items on a pool, load balanced, in order."""
        args = parse_arguments(self.remote_map, line)
        members = self._map_targets(args.targets)
        values = []
        for name in (args.func, args.items):
            if name not in self.shell.user_ns:
                raise UsageError(f"%remote_map takes names from the notebook; '{name}' is not "
                                 "defined (assign the function or the items to a name first)")
            values.append(self.shell.user_ns[name])
        return pool.map_on(members, values[0], values[1], args.chunksize, timeout=args.timeout,
                           progress=not args.no_progress)

    def _map_targets(self, text: str | None) -> list:
        if text is not None:
            return pool.resolve(text)
        groups = list(targets.registry.groups.values())
        if len(groups) != 1:
            raise UsageError("%remote_map needs --targets: "
                             + ("no pool is connected" if not groups else
                                f"pools {', '.join(g.name for g in groups)} are connected"))
        return groups[0].members

    @line_magic
    def remote_pip(self, line: str) -> None:
        """``%remote_pip [TARGET] install pytz``: run pip in a target's environment (default: current)."""
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise UsageError(f"cannot read {line.strip()!r}: {err}") from None
        name = words.pop(0) if words and words[0] in targets.registry.targets else None
        if not words:
            raise UsageError("usage: %remote_pip [TARGET] install REQUIREMENT ...")
        packages.pip(targets.registry.get(name), words)

    @line_magic
    def remote_targets(self, line: str) -> None:
        """List the connected targets: name, kernel, alive, objects held."""
        if line.strip():
            raise UsageError("%remote_targets takes no arguments")
        if not targets.registry.targets:
            print("No targets. Connect one with %remote_connect.")
            return
        rows = [("", "name", "group", "kernel", "alive", "objects")]
        group_of = {m.name: group for group, members in targets.registry.groups.items()
                    for m in members.members}
        for name, target in targets.registry.targets.items():
            alive = target.alive()
            held = "-"
            if alive and target.busy():
                held = f"busy: job {', '.join(str(job.number) for job in target.jobs())}"
            elif alive:
                try:
                    held = str(target.info().get("objects", "?"))
                except RemoteTimeout:
                    held = "busy"
            current = "*" if name == targets.registry.current else ""
            rows.append((current, name, group_of.get(name, ""), _where(target),
                         "yes" if alive else "no", held))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

    @magic_arguments()
    @argument("--target", "-t", default=None, help="Name of the target (default: current).")
    @line_magic
    def remote_jobs(self, line: str) -> None:
        """List the detached jobs of a target's engine: id, status, start, elapsed, first line."""
        args = parse_argstring(self.remote_jobs, line)
        target = targets.registry.get(args.target)
        found = target.detached_jobs()
        if not found:
            print(f"Target '{target.name}' has no detached jobs (%%remote --detach starts one).")
            return
        rows = [("id", "status", "started", "elapsed", "names", "cell")]
        for job in found:
            names = ("collected" if job["collected"] else "saved" if job["saved"] else
                     "kept" if job["status"] == "done" else "-")
            rows.append((str(job["id"]), job["status"], _clock(job["started"]),
                         format_duration(job["elapsed"]) if job["started"] else "-", names,
                         job["first_line"]))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())

    @magic_arguments()
    @argument("number", type=int, help="The job's id in its engine (%%remote_jobs lists them).")
    @argument("--target", "-t", default=None, help="Name of the target (default: current).")
    @line_magic
    def remote_job(self, line: str):
        """``job = %remote_job 3``: a target's detached job 3, to follow and collect."""
        args = parse_argstring(self.remote_job, line)
        return targets.registry.get(args.target).job(args.number, self.shell.user_ns)

    @magic_arguments()
    @argument("name", nargs="?", default=None, help="Target to close (default: current).")
    @argument("--all", action="store_true", help="Close every target.")
    @argument("--shutdown", action="store_true",
              help="End a persistent engine too (with its uncollected and saved results); "
                   "without it a persistent engine runs on.")
    @line_magic
    def remote_disconnect(self, line: str) -> None:
        """Close a target; a kernel we started is shut down, its proxies become unusable."""
        args = parse_arguments(self.remote_disconnect, line)
        groups = list(targets.registry.groups) if args.all else (
            [args.name] if args.name in targets.registry.groups else [])
        for group in groups:
            closing = targets.registry.groups[group]
            closing.close()
            print(f"Pool '{group}' ({len(closing)} kernels) shut down.")
        if groups and not args.all:
            return
        names = list(targets.registry.targets) if args.all else [targets.registry.get(args.name).name]
        for name in names:
            target = targets.registry.targets[name]
            if target.persistent is None:
                targets.registry.remove(name)
                action = "shut down" if target.owned else "disconnected (kernel left running)"
                print(f"Target '{name}' {action}.")
            elif args.shutdown:
                lost = target.uncollected_jobs()
                targets.registry.remove(name, shutdown=True)
                print(f"Target '{name}' shut down: its persistent engine has ended"
                      + (f"; the results of job {', '.join(map(str, lost))}, never collected, "
                         "are gone" if lost else "") + ".")
            else:
                targets.registry.remove(name)
                print(f"Target '{name}' disconnected; its persistent engine runs on "
                      f"(%remote_connect ... --name {name} --persist reconnects, and with "
                      "--shutdown here it ends).")


def _output_history(name: str) -> bool:
    """Whether ``name`` is one of IPython's output history names (``_``, ``__``, ``_11``)."""
    return name in ("_", "__", "___") or (name[:1] == "_" and name[1:].isdigit())


def show_as(shell, value, shown: dict, target: str) -> None:
    """Make the shell show ``value``, the cell's result, as the remote kernel formatted it.

    The value (or proxy) is still ``Out[n]`` and ``_``; only how it looks comes from where the
    cell ran, with the display options the cell set there. Once: the next result IPython
    displays, if it is ``value``. A representation that raised there (``shown["error"]``, and
    ``shown["more_errors"]`` after it) shows its error here at that moment, and the cell goes
    on, as IPython's formatters do.
    """
    hook = shell.displayhook

    def compute_format_data(result):
        del hook.compute_format_data  # back to the class's own, whatever comes next
        if result is not value:
            return hook.compute_format_data(result)
        for content in [shown.get("error"), *(shown.get("more_errors") or ())]:
            if content:
                error = RemoteError.from_reply(content, target)
                shell.showtraceback((type(error), error, None))
        return shown["data"], shown["metadata"]

    hook.compute_format_data = compute_format_data


def _names(options: list[str]) -> list[str]:
    """``--scatter a,b --scatter c`` → ["a", "b", "c"]."""
    return [name.strip() for option in options for name in option.split(",") if name.strip()]


def _where(target: targets.Target) -> str:
    details = target.details
    kind = "local engine" if target.owned else f"kernel {target.spec}"
    if target.owned and target.spec.startswith("ssh://"):
        kind = f"engine over {target.spec}"
    if target.persistent is not None:
        kind = "persistent engine" + ("" if target.spec == "local" else f" at {target.spec}")
    return f"{kind} pid {details.get('pid', '?')} on {details.get('hostname', '?')}"


def _jobs_summary(target: targets.Target) -> str:
    """``detached jobs: 1 running, 2 done (%remote_jobs lists them)``, or that there are none."""
    found = target.detached_jobs()
    if not found:
        return "no detached jobs"
    counts: dict[str, int] = {}
    for job in found:
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    return ("detached jobs: " + ", ".join(f"{count} {status}" for status, count in counts.items())
            + " (%remote_jobs lists them)")


def flush_all_releases() -> None:
    """After each notebook cell: send the releases of proxies that died during it."""
    for target in list(targets.registry.targets.values()):
        try:
            target.flush_releases()
        except Exception:  # a dead target's proxies have nothing left to release
            pass


__all__ = ["RemoteMagics", "parse_bytes", "parse_duration", "format_duration", "python_of",
           "format_size", "flush_all_releases"]
