"""The kernel's own namespace as the remote kernel's state: names out to a ``%%local`` cell, and back.

The remote kernel (:mod:`remote_magics.kernel`) runs its cells here through IPython's own
``execute_request``, so the notebook's names live in this kernel's ``user_ns``. Only a cell that
runs in the notebook's kernel (``%%local``) moves data: before it runs, ``remote_names_request``
gives it the names it reads, each a value or a proxy by the download policy (encoded as a run's
outputs are, :meth:`Engine.encode`); afterwards ``remote_bind_request`` puts back what it bound
or changed, and records the cell in this kernel's history so ``In``, ``Out`` and the execution
count stay the notebook's.

Runs inside the remote kernel and is shipped with the engine as source: standard library,
ipykernel and cloudpickle only.
"""
from __future__ import annotations

from types import FunctionType, MethodType, ModuleType
from typing import Any

from ..wire import in_place, protocol, serialize
from ..wire.in_place import update_in_place


def install(engine: Any) -> None:
    """Register the handlers of ``remote_names_request`` and ``remote_bind_request``."""

    async def names_request(stream, ident, parent) -> None:
        handle(engine, stream, ident, parent, names)

    async def bind_request(stream, ident, parent) -> None:
        handle(engine, stream, ident, parent, bind)

    engine.kernel.shell_handlers[protocol.NAMES_REQUEST] = names_request
    engine.kernel.shell_handlers[protocol.BIND_REQUEST] = bind_request


def handle(engine: Any, stream, ident, parent: dict, action) -> None:
    """Run ``action`` for one request and reply; always replies, whatever it raises."""
    if not engine.authentic(parent):
        return
    frames: list = []
    try:
        shell = engine.kernel.shell
        reply = action(engine, shell, parent, frames)
    except BaseException as err:  # the client waits for a reply whatever happens
        frames = []
        reply = {"status": "error", "ename": type(err).__name__, "evalue": str(err),
                 "traceback": [f"{type(err).__name__}: {err}"]}
    engine.reply(stream, ident, parent, reply, frames)


def visible(shell: Any, name: str) -> bool:
    """Whether ``name`` is one of the user's names (not IPython's own ``In``, ``get_ipython``...)."""
    ns, hidden = shell.user_ns, shell.user_ns_hidden
    return name in ns and not (name in hidden and hidden[name] is ns[name])


def names(engine: Any, shell: Any, parent: dict, frames: list) -> dict:
    """The values of the names asked for, by the request's download policy; the rest missing."""
    content = parent["content"]
    client = protocol.client_of(parent)
    outputs, missing = [], []
    batch = engine.batch()  # one stream: names for one object stay one object there
    asked = list(content.get("names", ()))
    with serialize.cell_namespace(shell.user_ns):
        for name in asked:
            if visible(shell, name):
                outputs.append(engine.encode(name, shell.user_ns[name], content, client, frames,
                                             batch))
            elif name not in shell.user_ns:
                missing.append(name)
        # the names that share what goes: a change there reaches them when it comes back
        for name in sharing(shell, batch.stream.holds(), set(asked)):
            outputs.append(engine.encode(name, shell.user_ns[name], content, client, frames,
                                         batch))
    packed_frames, packed = serialize.pack(outputs, frames)
    frames[:] = packed_frames
    return {"status": "ok", "outputs": outputs, "result": None, "deleted": [],
            "missing": missing, "packed": packed}


def sharing(shell: Any, held: set[int], skip: set[str]) -> list[str]:
    """The user's other names whose objects are among ``held`` (reached by what is sent), and
    could change in place: they travel too, so a ``%%local`` cell that changes ``ax`` sends
    back ``fig`` with it."""
    return [name for name, value in shell.user_ns.items()
            if id(value) in held and name not in skip and not name.startswith("_")
            and visible(shell, name) and changeable(value)]


#: Values that no code changes in place (or that go by reference, as code and modules do).
_UNCHANGING = (type, ModuleType, bytes, range)
#: Members of a tuple or frozenset looked at to see whether one can change in place; past
#: these, it may (a digest before and after the run tells whether it did).
_MEMBERS_LOOKED_AT = 10_000


def changeable(value: Any, _depth: int = 0) -> bool:
    """Whether code could change ``value`` in place: not scalars, classes, modules (but a class
    of the notebook's, whose attributes a cell may set: ``Registry.items.append(x)``, and a
    module a program made itself, :func:`..wire.serialize.made_at_run_time`). A Python
    function can: its defaults (``def acc(x, seen=[])``), its closure (``nonlocal count``), its
    attributes (``f.calls += 1``, or a first one: ``event.terminal = True`` set on the
    notebook's function by a library the cell calls, hunt 14 C1); a function the notebook sent
    comes back as the notebook's own, so such a change must come back with it (it is watched:
    a digest of the function's own state, not of its code). A tuple,
    namedtuple or frozenset can when a member can (``t = ([1],)``, ``t[0].append(2)``); a
    bound method when its object (or its class, for a class method) can (``add = acc.add``,
    ``add(5)``)."""
    kind = type(value)
    if kind is FunctionType:
        return True
    if isinstance(value, ModuleType):  # one a program made, which holds its data
        # (`cfg.items.append(x)`), also one out of sys.modules (hunt 39 H39-3)
        return serialize.made_at_run_time(value) or serialize.detached(value)
    if isinstance(value, type):  # of any metaclass: a Protocol, an Enum (hunt 14 C11)
        return value.__module__ == "__main__"
    if kind is MethodType:
        owner = value.__self__
        return not isinstance(owner, ModuleType) and changeable(owner, _depth + 1)
    if isinstance(value, (tuple, frozenset)):
        if _depth > 3 or in_place.attribute_of(value, "__dict__") is not None:
            return True  # (a subclass's object with attributes, which a cell may set: H24-12)
        for count, member in enumerate(value):
            if count == _MEMBERS_LOOKED_AT:
                return True
            if type(member) not in serialize.PLAIN and changeable(member, _depth + 1):
                return True
        return False
    return not (kind in serialize.PLAIN or isinstance(value, _UNCHANGING)
                or callable(value) and hasattr(value, "__code__"))


def bind(engine: Any, shell: Any, parent: dict, frames: list) -> dict:
    """Bind, update in place, or delete names; record a cell that ran elsewhere in the history."""
    content = parent["content"]
    client = protocol.client_of(parent)
    items = content.get("inputs", [])
    values: dict[str, Any] = {}
    failed = []
    result_name = items[-1]["name"] if items and content.get("result") else None
    with serialize.resolving(engine.resolver(client)), serialize.cell_namespace(shell.user_ns), \
            serialize.updating(shell.user_ns):  # objects it fetched come back as these
        loaded = serialize.load_names(items, serialize.unpack(items, parent["buffers"],
                                                              content.get("packed")))
    for item, (value, err) in zip(items, loaded):
        if err is None:
            values[item["name"]] = value
        else:
            failed.append({"name": item["name"], "error": f"{type(err).__name__}: {err}"})
    result = values.pop(result_name) if result_name in values else None
    changed = set(content.get("changed", ()))
    for name, value in values.items():
        if name in changed and visible(shell, name) and update_in_place(shell.user_ns[name], value):
            continue
        shell.user_ns[name] = value
    for name in content.get("deletes", ()):
        if visible(shell, name):
            del shell.user_ns[name]
    count = content.get("execution_count")
    if count is not None:
        record(shell, int(count), content.get("cell"), result, result_name is not None)
    return {"status": "ok", "failed": failed, "execution_count": shell.execution_count}


def record(shell: Any, count: int, cell: str | None, result: Any, has_result: bool) -> None:
    """Record cell ``count`` (run in the notebook's kernel) as ``In[count]``, and its result.

    Without ``cell``, only make ``count`` the number of this kernel's next cell (when higher).
    """
    history = shell.history_manager
    before = shell.execution_count
    while len(history.input_hist_parsed) < count:  # cells this kernel never saw
        history.input_hist_parsed.append("")
        history.input_hist_raw.append("")
    if cell is None:
        shell.execution_count = max(before, count)
        return
    if len(history.input_hist_parsed) == count:
        history.store_inputs(count, cell, cell)
        if has_result:
            shell.execution_count = count + 1  # the display hook numbers Out by the one before
            shell.displayhook.update_user_ns(result)
    shell.execution_count = max(before, count + 1)
