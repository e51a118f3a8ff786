"""A cell that runs in the notebook's kernel while the notebook's names live in an engine.

The remote kernel (:mod:`remote_magics.kernel`) keeps its state in the engine's own namespace;
a ``%%local`` cell runs in the local kernel instead, so its data moves, the other way round from
a ``%%remote`` cell: :func:`fetch` brings the names it may read from the engine, each a value or
a proxy by the download policy (``remote_names_request``); :func:`watch` and
:meth:`Watch.changes` see what it bound, deleted, or changed in place; :func:`push` sends that back
(``remote_bind_request``), with the cell for the engine's ``In``/``Out`` history. ``target`` is
a :class:`~remote_magics.targets.base.Target` (this module is below targets, so it takes any
such object: ``request``, ``name``, ``release_later``, ``flush_releases``).
"""
from __future__ import annotations

import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..errors import RemoteError
from ..wire import protocol, serialize
from . import capture, runner
from .proxy import RemoteObject

_IDENTIFIER = re.compile(r"[^\W\d]\w*")
#: A result that is not there (a cell whose last line is no expression, or ends with ';').
NO_RESULT = object()


def names_read(raw: str, python: str) -> list[str]:
    """The names a local cell may read: those its code reads, and every word of its text.

    The words (of its code and its strings, not its comments) cover what the syntax tree cannot
    see: a magic's arguments, ``eval('x')``, ``df.query('a > @lim')``. Asking for a name the
    engine does not hold costs nothing.
    """
    try:
        found = list(capture.analyze(python).reads)
    except SyntaxError:  # the local shell reports it; the words still tell what it may read
        found = []
    seen = set(found)
    for word in _words(raw):
        if word not in seen and not keyword.iskeyword(word):
            seen.add(word)
            found.append(word)
    return found


_TEXT_TOKENS = {tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def _words(raw: str) -> list[str]:
    """The identifiers in a cell's text, comments left out (all of them if it does not tokenize)."""
    words = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(raw).readline):
            if token.type == tokenize.NAME:
                words.append(token.string)
            elif token.type in _TEXT_TOKENS:
                words.extend(_IDENTIFIER.findall(token.string))
    except (tokenize.TokenError, SyntaxError):  # IPython syntax Python cannot tokenize
        return _IDENTIFIER.findall(raw)
    return words


def user_names(namespace: Mapping[str, Any], hidden: Mapping[str, Any]) -> dict[str, Any]:
    """The user's names of a namespace and their objects (IPython's own names left out)."""
    return {name: value for name, value in namespace.items()
            if not (name in hidden and hidden[name] is value)
            and not protocol.HISTORY_NAME.fullmatch(name)}


def fingerprint(value: Any) -> bytes | None:
    """A digest of a value's pickle, to see whether a cell changed it in place; None if unpicklable."""
    if type(value) in serialize.PLAIN or isinstance(value, RemoteObject):
        return None  # immutable, or changed remotely by its own operations
    return serialize.fingerprint(value)


def fetch(target: Any, names: Iterable[str], namespace: dict, *, download: str, limit: int,
          keep: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """Put the engine's values of ``names`` into ``namespace``; the names fetched, and notes.

    A name the engine does not hold is removed from ``namespace`` (a later cell there deleted
    it), unless it is in ``keep`` (names that live only in this kernel). Raises
    :class:`RemoteError` when the engine refuses, and what :meth:`Target.request` raises.
    """
    names = list(dict.fromkeys(names))
    if not names:
        return [], []
    reply = target.request(protocol.NAMES_REQUEST,
                           {"names": names, "download": download, "bytes": int(limit)})
    run = runner.apply(reply, target, namespace)
    keep = set(keep)
    for name in reply.content.get("missing", ()):
        if name in namespace and name not in keep:
            del namespace[name]
    return list(run.values), run.notes


@dataclass
class Changes:
    """What a cell did to a namespace's user names (:meth:`Watch.changes`)."""

    bound: dict[str, Any] = field(default_factory=dict)  # new or rebound names: their values
    changed: dict[str, Any] = field(default_factory=dict)  # same object, changed in place
    deleted: list[str] = field(default_factory=list)


def watch(namespace: Mapping[str, Any], hidden: Mapping[str, Any], read: Iterable[str]) -> "Watch":
    """Take a namespace's state before a cell: its names' objects, a fingerprint of each read one."""
    names = user_names(namespace, hidden)
    prints = {name: fingerprint(names[name]) for name in read if name in names}
    return Watch(names, {name: fp for name, fp in prints.items() if fp is not None})


@dataclass
class Watch:
    """A namespace's user names before a cell (holding their objects, so ids stay unique)."""

    names: dict[str, Any]
    prints: dict[str, bytes]

    def kept(self, names: Iterable[str], namespace: Mapping[str, Any]) -> dict[str, Any]:
        """The names of ``names`` still bound, in ``namespace``, to the object they had before."""
        return {name: self.names[name] for name in names
                if name in self.names and namespace.get(name, self) is self.names[name]}

    def changes(self, namespace: Mapping[str, Any], hidden: Mapping[str, Any]) -> Changes:
        """What the cell bound, deleted and changed in place, compared with now."""
        now = user_names(namespace, hidden)
        found = Changes()
        for name, value in now.items():
            if name not in self.names or self.names[name] is not value:
                found.bound[name] = value
            elif name in self.prints and fingerprint(value) != self.prints[name]:
                found.changed[name] = value
        found.deleted = [name for name in self.names if name not in now]
        return found


def push(target: Any, values: Mapping[str, Any], *, changed: Iterable[str] = (),
         deletes: Iterable[str] = (), cell: str | None = None,
         execution_count: int | None = None, result: Any = NO_RESULT,
         namespace: Mapping[str, Any] | None = None,
         held: Mapping[str, Any] = {}) -> tuple[dict, int | None]:
    """Bind ``values`` in the engine's namespace (``changed`` ones updated in place), delete
    ``deletes``, and record ``cell`` as ``In[execution_count]`` (with ``result`` as its ``Out``).

    ``namespace``: this kernel's namespace, where the values live (its functions go without it
    and take the engine's as globals there). All values travel in one pickle stream, so names
    for one object are one object in the engine too. ``held``: objects this kernel fetched
    from the engine, by name, still bound here; wherever they appear in ``values`` they are the
    engine's own objects there (with their new state when in ``changed``).
    Returns the names that could not go, each with the reason (they stay in this kernel only),
    and the engine's next execution count. Raises :class:`RemoteError` when the engine refuses,
    and what :meth:`Target.request` raises.
    """
    failed: dict[str, str] = {}
    inputs, frames = [], []
    changed = list(changed)
    entries = list(values.items())
    if result is not NO_RESULT:
        entries.append(("Out", result))
    stream = serialize.Outgoing()
    with serialize.by_value(serialize.own_modules()), serialize.returning(held, changed), \
            serialize.cell_namespace(namespace if namespace is not None else {}):
        for index, (name, value) in enumerate(entries):
            try:
                item, fields = runner.dump_for(target, value, stream)
            except Exception as err:
                if index < len(values):  # a result that cannot go is simply not recorded
                    failed[name] = f"{type(err).__name__}: {err}"
                else:
                    result = NO_RESULT
                continue
            inputs.append({"name": name, "nframes": len(item), **fields})
            frames.extend(item)
    frames, packed = serialize.pack(inputs, frames)
    content = {"inputs": inputs, "packed": packed,
               "changed": [name for name in changed if name not in failed],
               "deletes": list(deletes), "execution_count": execution_count, "cell": cell,
               "result": result is not NO_RESULT}
    reply = target.request(protocol.BIND_REQUEST, content, frames)
    if reply.content.get("status") != "ok":
        raise RemoteError.from_reply(reply.content, target.name)
    for entry in reply.content.get("failed", ()):
        failed[entry["name"]] = f"the engine cannot unpickle it ({entry['error']})"
    failed.pop("Out", None)
    target.flush_releases()
    return failed, reply.content.get("execution_count")
