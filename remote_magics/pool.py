"""Pools: one cell, or one function, fanned out over many kernels in parallel.

A :class:`Pool` is a named group of targets (``pool[0]``, ``pool[1]``, ...), each an ordinary
:class:`~remote_magics.targets.Target` in the registry. :func:`run_on` sends a cell to every
member first and then waits for all of them in one poll loop
(:func:`remote_magics.client.connection.wait_all`), each run prepared and applied by
:mod:`remote_magics.cells.runner` exactly as for one target. :meth:`Pool.map` is load
balanced: each member gets the next chunk as soon as it finishes its last one.

Where the kernels come from is the business of their kind (:mod:`remote_magics.targets`: local
engines, a kernelspec, a Dask cluster); this module only groups and drives them.
"""
from __future__ import annotations

import logging
import math
import re
import sys
import threading
import time
from collections import ChainMap
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from . import targets
from .cells import capture, display
from .cells.proxy import fetch
from .cells.runner import RunResult
from .client.connection import Pending, wait_all
from .engine.tasks import MAP_ITEM_NOTE, map_chunk
from .errors import FanOutError, MapError, NotConnected, RemoteMagicsError
from .targets import Target, local, registry
from .wire import protocol, serialize
from .wire.in_place import module_of

#: Above this many bytes in all, a run goes to the members from one thread each.
PARALLEL_BYTES = 8 << 20

log = logging.getLogger(__name__)


class PerMember(list):
    """A list with one entry per member of a fan-out run, in member order.

    Used as an input of a later fan-out run over the same members, member ``i`` sees entry
    ``i`` (so per-member proxies stay where they live); anywhere else it is a plain list.
    """

    def __init__(self, values: Iterable = (), targets: Sequence[str] = ()) -> None:
        super().__init__(values)
        self.targets = tuple(targets)

    def __reduce__(self) -> tuple:
        return list, (list(self),)  # the remote side needs no remote_magics to load it


@dataclass
class FanOutResult:
    """What a fan-out run did: every member's :class:`RunResult`, and the names it bound."""

    targets: list[str]
    runs: list[RunResult]
    values: dict[str, Any] = field(default_factory=dict)  # name → PerMember or gathered value
    result: PerMember | None = None
    seconds: float = 0.0


class Pool:
    """A named group of kernels. ``pool[i]`` is a member :class:`Target`; ``len(pool)`` counts them.

    ``pool.run(code, namespace)`` runs a cell on every member; ``pool.map(func, items)`` maps a
    function over items, load balanced. ``pool.close()`` shuts the kernels down.
    """

    def __init__(self, name: str, members: list[Target], *, spec: str,
                 on_close: Sequence[Callable[[], None]] = ()) -> None:
        self.name = name
        self.members = list(members)
        self.spec = spec
        self._on_close = list(on_close)

    def __getitem__(self, index: int) -> Target:
        return self.members[index]

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def run(self, code: str, namespace: dict, **options: Any) -> FanOutResult:
        """Run ``code`` on every member in parallel; see :func:`run_on` for the options."""
        return run_on(self.members, code, namespace, **options)

    def map(self, func: Callable, iterable: Iterable, chunksize: int | None = None, *,
            timeout: float | None = None, progress: bool = True) -> list:
        """``[func(x) for x in iterable]``, computed by the members; see :func:`map_on`."""
        return map_on(self.members, func, iterable, chunksize, timeout=timeout, progress=progress)

    def close(self) -> None:
        """Shut every member down (or disconnect from those we did not start)."""
        for member in self.members:
            if registry.targets.get(member.name) is member:
                registry.remove(member.name)
            else:
                member.close()
        if registry.groups.get(self.name) is self:
            del registry.groups[self.name]
        for hook in self._on_close:
            try:
                hook()
            except Exception:  # one failing cleanup must not keep the others from running
                log.warning("remote_magics: cleaning up pool '%s' failed", self.name, exc_info=True)
        self._on_close.clear()

    def __repr__(self) -> str:
        return f"<Pool {self.name!r} of {len(self)} ({self.spec}): {', '.join(m.name for m in self)}>"


# --- which targets ---------------------------------------------------------------------------

_TARGET_NAME = re.compile(r"[A-Za-z0-9_.\-]+(?:\[[0-9]+\])?")


def resolve(text: str) -> list[Target]:
    """The targets named by ``--targets`` text: ``all``, a group's name, or ``a,b,pool[1]``.

    Parsed, never evaluated: a comma-separated list of target or group names.
    """
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise NotConnected(f"--targets takes names separated by commas, not {text!r}")
    found: list[Target] = []
    for name in names:
        if not _TARGET_NAME.fullmatch(name):
            raise NotConnected(f"--targets: {name!r} is not a target or group name (names are "
                               "letters, digits, '_', '-', '.', optionally with [index])")
        if name == "all" and name not in registry.targets and name not in registry.groups:
            found.extend(registry.targets.values())
        elif name in registry.groups:
            found.extend(registry.groups[name].members)
        else:
            found.append(registry.get(name))
    unique = list({id(t): t for t in found}.values())
    if not unique:
        raise NotConnected("no targets are connected; start a pool with "
                           "%remote_connect local -n 4 --name pool")
    return unique


# --- splitting and joining -------------------------------------------------------------------


def split(value: Any, parts: int, name: str = "value") -> list:
    """``value`` cut into ``parts`` contiguous chunks of near-equal length, in order."""
    module = module_of(type(value)).split(".")[0]
    if module == "numpy":
        import numpy

        return numpy.array_split(value, parts)
    if module == "pandas":
        bounds = _bounds(len(value), parts)
        return [value.iloc[a:b] for a, b in bounds]
    if isinstance(value, (str, bytes)) or not hasattr(value, "__getitem__") \
            or not hasattr(value, "__len__"):
        raise TypeError(f"--scatter {name}: a {type(value).__name__} cannot be split; scatter a "
                        "list, tuple, range, numpy array or pandas object")
    return [value[a:b] for a, b in _bounds(len(value), parts)]


def _bounds(length: int, parts: int) -> list[tuple[int, int]]:
    return [(length * i // parts, length * (i + 1) // parts) for i in range(parts)]


def concat(values: Sequence, name: str = "value") -> Any:
    """The members' values of one name joined in order (lists, tuples, arrays, pandas objects)."""
    values = [fetch(v) for v in values]
    kinds = {type(v) for v in values}
    modules = {module_of(k).split(".")[0] for k in kinds}
    if modules == {"numpy"}:
        import numpy

        return numpy.concatenate(values)
    if modules == {"pandas"}:
        import pandas

        return pandas.concat(values)
    if kinds <= {list, range}:
        return [x for v in values for x in v]
    if kinds == {tuple}:
        return tuple(x for v in values for x in v)
    shown = ", ".join(sorted(k.__name__ for k in kinds))
    raise TypeError(f"--gather {name}: the members' values are {shown}; gather joins lists, "
                    f"tuples, numpy arrays and pandas objects (bind e.g. {name} = [value])")


# --- fan-out runs ----------------------------------------------------------------------------


class _Grouped:
    """Output of a fan-out run, shown per member under its name, in member order.

    Each member's output is held until it and the members before it have finished, so
    members' lines never interleave.
    """

    def __init__(self, names: Sequence[str], show: Callable[[dict], None] | None) -> None:
        self.names = list(names)
        self.held: list[list[dict]] = [[] for _ in names]
        self.finished = [False] * len(names)
        self.shown = 0
        self.show = show

    def collector(self, index: int) -> Callable[[dict], None]:
        return self.held[index].append

    def finish(self, index: int) -> None:
        self.finished[index] = True
        while self.shown < len(self.names) and self.finished[self.shown]:
            self._flush(self.shown)
            self.shown += 1

    def flush_all(self) -> None:
        for index in range(self.shown, len(self.names)):
            self._flush(index)
        self.shown = len(self.names)

    def _flush(self, index: int) -> None:
        messages, self.held[index] = self.held[index], []
        if not messages or self.show is None:
            return
        sys.stdout.write(f"[{self.names[index]}]\n")
        for msg in messages:
            self.show(msg)
        sys.stdout.flush()
        sys.stderr.flush()


def run_on(
    members: Sequence[Target],
    code: str,
    namespace: dict,
    *,
    download: str = "small",
    bytes: int = protocol.DEFAULT_BYTES,
    timeout: float | None = None,
    on_output: Callable[[dict], None] | None = display.show,
    hidden: Mapping[str, Any] | None = None,
    cell_id: int | None = None,
    scatter: Sequence[str] = (),
    gather: Sequence[str] = (),
) -> FanOutResult:
    """Run ``code`` on every member at once; each name it binds comes back as a list by member.

    ``scatter`` names are split into one chunk per member (each member sees its chunk under the
    name); ``gather`` names are joined back in member order (:func:`concat`) instead of listed.
    An input that is a :class:`PerMember` list from these same members gives member ``i`` its
    entry ``i``. Output is shown per member. When some members fail, :class:`FanOutError` lists
    the failures and holds every member's result; ``namespace`` changes only when all succeed.
    """
    started = time.perf_counter()
    names = [m.name for m in members]
    overlays: list[dict[str, Any]] = [{} for _ in members]
    for name in scatter:
        if name not in namespace:
            raise NameError(f"--scatter {name}: no such name in the notebook")
        for overlay, chunk in zip(overlays, split(namespace[name], len(members), name)):
            overlay[name] = chunk
    for name, value in namespace.items():
        if isinstance(value, PerMember) and value.targets == tuple(names) and name not in scatter:
            for overlay, entry in zip(overlays, value):
                overlay[name] = entry
    deletable = [n for n in capture.analyze(code).deletes if n in namespace]
    grouped = _Grouped(names, on_output)
    requests = [member.prepare_run(code, ChainMap(overlays[i], namespace), download=download,
                                   bytes=bytes, hidden=hidden, cell_id=cell_id,
                                   shares_random=False)  # each member its own numbers
                for i, member in enumerate(members)]  # a value that does not pickle: none sent
    for request in requests:  # each member's input() asks here, as we wait for them all
        request.content["stdin"] = display.stdin_allowed()
    pending, failures = send_all(members, requests, timeout, grouped)
    index_of = {id(p): i for i, p in enumerate(pending) if p is not None}
    for i in failures:
        grouped.finish(i)
    try:
        for done in wait_all([p for p in pending if p is not None]):
            grouped.finish(index_of[id(done)])
    finally:
        grouped.flush_all()
    runs: list[RunResult | BaseException] = []
    interrupted: KeyboardInterrupt | None = None
    for i, (member, p) in enumerate(zip(members, pending)):
        if p is None:
            runs.append(failures[i])
            continue
        scratch = {n: None for n in deletable}  # lets apply() report the cell's deletions
        try:
            runs.append(member.finish_run(p, scratch))
        except KeyboardInterrupt as err:
            interrupted = interrupted or err
            runs.append(err)
        except Exception as err:
            runs.append(err)
    if interrupted:
        raise interrupted  # the first member's: it shows where its remote cell was
    if any(isinstance(r, BaseException) for r in runs):
        raise FanOutError(names, runs)
    return _combine(names, runs, namespace, gather, time.perf_counter() - started)


def send_all(members: Sequence[Target], requests: list, timeout: float | None,
             grouped: "_Grouped") -> tuple[list[Pending | None], dict[int, BaseException]]:
    """Send each member its prepared run, all at once: one thread per member beyond the first,
    so that big uploads to several kernels overlap rather than queue. Returns the runs in flight
    (None where sending failed) and each failure; raises when nothing was sent anywhere."""
    pending: list[Pending | None] = [None] * len(members)
    failures: dict[int, BaseException] = {}

    def send(i: int) -> None:
        try:
            pending[i] = members[i].send_run(requests[i], timeout=timeout,
                                             on_output=grouped.collector(i))
        except Exception as err:  # reported with the member's result
            if not big and not any(pending):
                raise  # nothing was sent anywhere: the plain error says it best
            failures[i] = err

    big = len(members) > 1 and sum(serialize.nbytes(r.frames) for r in requests) > PARALLEL_BYTES
    threads = [threading.Thread(target=send, args=(i,), name=f"remote_magics send {i}",
                                daemon=True) for i in range(1, len(members))] if big else []
    for thread in threads:
        thread.start()
    try:
        for i in range(1 if big else len(members)):
            send(i)
    finally:
        for thread in threads:
            thread.join()  # each send ends: its engine acknowledges, refuses or is found dead
    if big and len(failures) == len(members):
        raise failures[0]  # nothing was sent anywhere: the plain error says it best
    return pending, failures


def _combine(names: list[str], runs: list, namespace: dict, gather: Sequence[str],
             seconds: float) -> FanOutResult:
    bound: dict[str, None] = {}
    for run in runs:
        bound.update(dict.fromkeys(run.values))
    values: dict[str, Any] = {}
    for name in bound:
        entries = PerMember((run.values.get(name) for run in runs), names)
        values[name] = concat(entries, name) if name in gather else entries
    missing = [name for name in gather if name not in values]
    if missing:
        raise NameError(f"--gather {', '.join(missing)}: the cell did not bind "
                        f"{'it' if len(missing) == 1 else 'them'} on any member")
    result = None
    if any(run.result is not None for run in runs):
        result = PerMember((run.result for run in runs), names)
    deleted = set.intersection(*(set(run.deleted) for run in runs)) if runs else set()
    namespace.update(values)
    for name in deleted - set(values):
        namespace.pop(name, None)
    return FanOutResult(names, runs, values, result, seconds)


# --- map -------------------------------------------------------------------------------------

_MAP_CODE = "_remote_map_results = map_chunk(_remote_map_func, _remote_map_items, _remote_map_start)"
_MAP_INDEX = re.compile(re.escape(MAP_ITEM_NOTE).replace(r"\{index\}", "([0-9]+)"))


def map_on(members: Sequence[Target], func: Callable, iterable: Iterable,
           chunksize: int | None = None, *, timeout: float | None = None,
           progress: bool = True) -> list:
    """``[func(x) for x in iterable]`` computed by ``members``, load balanced, in order.

    Items go out in chunks of ``chunksize`` (by default about four chunks per member); each
    member gets its next chunk as soon as it returns one, so a slow member does not hold back
    the rest. ``timeout`` bounds each chunk. A failing item raises :class:`MapError` naming its
    index; a KeyboardInterrupt interrupts every member.
    """
    items = list(iterable)
    if not members:
        raise NotConnected("map needs at least one target")
    if chunksize is None:
        chunksize = max(1, math.ceil(len(items) / (4 * len(members))))
    if chunksize < 1:
        raise ValueError("chunksize must be at least 1")
    chunks = [(start, items[start:start + chunksize]) for start in range(0, len(items), chunksize)]
    results: list = [None] * len(items)
    bar = _progress(len(items)) if progress else None
    flights: dict[int, tuple[Target, int, int]] = {}  # id(pending) → (member, start, length)
    pending: list[Pending] = []
    failure: tuple[int, BaseException] | None = None
    interrupted: KeyboardInterrupt | None = None
    queue = iter(chunks)

    def send(member: Target) -> None:
        chunk = next(queue, None)
        if chunk is None:
            return
        start, part = chunk
        namespace = {"map_chunk": map_chunk, "_remote_map_func": func,
                     "_remote_map_items": part, "_remote_map_start": start}
        p = member.start_run(_MAP_CODE, namespace, download="all", timeout=timeout,
                             on_output=display.show)
        flights[id(p)] = (member, start, len(part))
        pending.append(p)

    try:
        for member in members:
            send(member)
        for done in wait_all(pending):  # pending grows as members get their next chunk
            member, start, length = flights.pop(id(done))
            try:
                run = member.finish_run(done, {})
            except KeyboardInterrupt as err:
                interrupted = interrupted or err
                continue
            except Exception as err:
                index = _failed_index(err, start)
                if failure is None or index < failure[0]:
                    failure = (index, err)
                continue
            results[start:start + length] = run.values["_remote_map_results"]
            if bar is not None:
                bar.update(length)
            if failure is None and not interrupted:
                send(member)
    finally:
        if bar is not None:
            bar.close()
    if interrupted:
        raise interrupted  # the first member's: it shows where its remote cell was
    if failure is not None:
        raise MapError(failure[0], items[failure[0]], failure[1])
    return results


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _failed_index(err: BaseException, start: int) -> int:
    """The index of the item a failed chunk stopped at (its note in the remote traceback)."""
    text = _ANSI.sub("", "\n".join(getattr(err, "traceback", None) or ()))
    found = _MAP_INDEX.findall(text)
    return int(found[-1]) if found else start


def _progress(total: int) -> Any:
    return display.progress_bar(total, "remote_map", unit="item", leave=False)


# --- making pools ----------------------------------------------------------------------------


def connect_pool(spec: str | None, *, n: int | None, name: str | None, timeout: float = 60.0,
                 cwd: str | None = None, python: str | None = None) -> Pool:
    """Start (or find) a pool: ``local`` or ``kernelspec:NAME`` with ``n`` kernels, or
    ``dask://SCHEDULER:PORT`` with one kernel per worker (at most ``n``). ``python``: the
    interpreter of ``local`` members (see :mod:`remote_magics.targets.local`).

    The current target stays what it was; only when there was none does ``pool[0]`` become it.
    """
    name = name or "pool"
    spec = spec or "local"
    options, label = {}, spec  # label: the spec as the pool shows it
    if python is not None:
        if targets.kind_of(spec) is not local.KIND:
            raise RemoteMagicsError(f"--python with -n takes 'local' targets, not {spec!r}")
        options["python"] = python
        label = local.spec_text(local.resolve_python(python))
    existing = registry.groups.get(name)
    if existing is not None:
        if existing.spec == label and (n is None or n == len(existing)) \
                and all(m.alive() for m in existing):
            return existing
        raise RemoteMagicsError(
            f"a pool named '{name}' is already connected ({existing.spec}, {len(existing)} "
            f"kernels). Disconnect it first with %remote_disconnect {name}, or pick another "
            "name with --name.")
    if not _TARGET_NAME.fullmatch(name) or "[" in name or name == "all":
        raise RemoteMagicsError(f"{name!r} cannot name a pool: use letters, digits, '_', '-', '.'")
    if name in registry.targets:
        raise RemoteMagicsError(f"'{name}' already names a target; pick another name with --name")
    if n is not None and n < 1:
        raise RemoteMagicsError("-n takes a number of kernels of at least 1")
    kind = targets.kind_of(spec)
    members, cleanup = targets.start(spec, name, n=n if (n is not None or kind.group) else 1,
                                     timeout=timeout, cwd=cwd, **options)
    pool = Pool(name, members, spec=label, on_close=[cleanup] if cleanup else [])
    registry.groups[name] = pool
    for member in members:  # the current target stays: a plain %%remote still runs there
        registry.add(member, current=False)
    return pool
