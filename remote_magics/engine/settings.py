"""Process settings that a notebook and its engine share, as one process would have them.

A plain notebook runs every cell in one process, so a setting one cell makes holds for the
cells after it: the recursion limit, the ``decimal`` context, NumPy's print options and error
handling (``np.seterr``), pandas' options, matplotlib's ``rcParams``, the ``warnings`` filters,
the configuration of ``logging`` (levels, filters, and the handlers that print to the cell's
output), the environment variables a cell sets, the working directory, ``sys.path``, the limit
on the digits of an ``int`` made ``str``, the default socket timeout, the CSV field size limit,
mpmath's precision, SymPy's global parameters, ``reprlib``'s limits, the first weekday of
``calendar``, the opener ``urllib.request`` installed, the locale, how IPython shows a result
(``%precision``, ``%pprint``, the display formatters a cell registers) and the formats of
inline figures. A remote cell runs in another process; so that it behaves as a plain one, each
side sends the settings it changed since they last agreed (a run request carries the
notebook's, its reply the engine's), and the other side takes them.

:func:`snapshot` reads them (flat: ``"pandas.display.max_rows": 10``), only for the libraries
already imported; :func:`differing` says which changed; :func:`take` sets them, and keeps those
of a library not imported yet until it is (:func:`take_pending`, called as its import ends).
A value that cannot be set here (another version of the library) is left alone.
Which backend matplotlib draws with is not a setting that crosses: each side keeps its own.
Standard library, cloudpickle and our pickler only (the libraries are used where they are
imported already).
"""
from __future__ import annotations

import __future__
import _signal
import base64
import contextlib
import functools
import importlib
import io
import logging
import pickle
import sys
import threading
import time
import types
import warnings
from typing import Any, Callable, Iterator

import cloudpickle

from ..wire import serialize

#: Settings of a library not imported on this side yet, by library: key → value, set once it is.
_pending: dict[str, dict[str, Any]] = {}


# Each library's settings are read as its *state*, a tuple cheap to take and to compare (a
# setting nobody changed is the same object, so two states compare by identity, value by
# value); its ``spell`` says a state out as name → value, for the few runs that change one.

def _decimal_read(module: Any) -> tuple:
    context = module.getcontext()
    return (context.prec, context.rounding, context.Emin, context.Emax, context.capitals,
            context.clamp, tuple(context.traps.values()), tuple(context.flags.values()))


def _decimal_spell(module: Any, state: tuple) -> dict[str, Any]:
    """The context's numbers and traps; and its flags apart: the conditions its operations
    met since they were cleared (``flags[Inexact]`` after a division says it rounded, hunt 21
    H21-5), which a cell's operations raise on either side."""
    *numbers, traps, flags = state
    kinds = tuple(module.getcontext().traps)
    if len(kinds) != len(traps) or len(kinds) != len(flags):
        return {}
    return {"context": (*numbers, tuple(sorted(kind.__name__ for kind, on in zip(kinds, traps)
                                               if on))),
            "flags": tuple(sorted(kind.__name__ for kind, on in zip(kinds, flags) if on))}


def _decimal_write(module: Any, name: str, value: Any) -> None:
    context = module.getcontext()
    if name == "flags":
        for kind in list(context.flags):
            context.flags[kind] = kind.__name__ in value
        return
    prec, rounding, emin, emax, capitals, clamp, traps = value
    context.prec, context.rounding, context.Emin, context.Emax = prec, rounding, emin, emax
    context.capitals, context.clamp = capitals, clamp
    for kind in list(context.traps):
        context.traps[kind] = kind.__name__ in traps


#: NumPy's print options and error state as last read: the context variables' values (new
#: objects whenever a cell changes them) and what they spell, read out only when they change.
_numpy_seen: list = [None, (), None, ()]


def _numpy_read(module: Any) -> tuple:
    drawn = _numpy_random_read()
    try:
        printing = module._core.arrayprint.format_options.get()
        errors = module._core._ufunc_config._extobj_contextvar.get()
    except AttributeError:  # a NumPy that keeps them elsewhere: read them out each time
        return tuple(module.get_printoptions().items()), _numpy_errors(module), drawn
    seen = _numpy_seen
    if seen[0] is not printing:
        seen[0], seen[1] = printing, tuple(module.get_printoptions().items())
    if seen[2] is not errors:
        seen[2], seen[3] = errors, _numpy_errors(module)
    return seen[1], seen[3], drawn


def _numpy_errors(module: Any) -> tuple:
    """``np.seterr``'s modes, and the callback ``np.seterrcall`` set, which the modes ``call``
    and ``log`` use (hunt 22 H22-2: without it, a division by zero raised "no function found"
    on the other side)."""
    return (*module.geterr().items(), ("call", module.geterrcall()))


def _numpy_spell(module: Any, state: tuple) -> dict[str, Any]:
    printing, errors, drawn = state
    spelled = {**dict(printing), **{"err." + name: value for name, value in errors}}
    if drawn is not None:
        spelled["random_state"] = _drawn_state(drawn, _numpy_random_read(), _numpy_random_state)
    return spelled


def _numpy_write(module: Any, name: str, value: Any) -> None:
    if name == "random_state":  # np.random.seed(17) or a draw: the global generator's state
        module.random.set_state(pickle.loads(value))
    elif name == "err.call":  # np.seterrcall: the function (or object with a write method)
        module.seterrcall(value)
    elif name.startswith("err."):  # np.seterr: what a division by zero does
        module.seterr(**{name[len("err."):]: value})
    else:
        module.set_printoptions(**{name: value})


# Random numbers: the state of the generators a plain ``random.random()`` and ``np.random.rand()``
# draw from (``random.seed(17)``, ``np.random.seed(17)``). In one process every cell draws from
# one stream, so a notebook that seeds once draws the same numbers whichever side runs a cell:
# the state crosses as a setting. Reading it whole costs 10-30 µs, too much for every run, so a
# run reads a fingerprint that any draw or seeding changes (where the generator is and a word of
# its state, read in place), and the whole state only when that changed. A run on many targets
# at once (a pool's fan-out) leaves the state alone: each member draws its own numbers there.

#: The settings that hold the generators' state, which a fan-out leaves alone.
RANDOM_KEYS = frozenset({"random.state", "numpy.random_state"})


def _python_random_probe(generator: Any) -> Callable[[], Any]:
    """A fingerprint of ``random``'s generator: its index and first and last words (CPython's
    ``_random.Random``: a C int, then 624 32-bit words, after the object's header)."""
    if sys.implementation.name != "cpython":  # an object's id is its address only there
        return generator.getstate
    import ctypes

    start = id(generator) + object.__basicsize__
    index = ctypes.c_int.from_address(start)
    words = (ctypes.c_uint32 * 624).from_address(start + ctypes.sizeof(ctypes.c_int))

    def fingerprint() -> Any:
        return index.value, words[0], words[623], generator.gauss_next

    agrees = generator.getstate()[1] == (*words, index.value)
    return fingerprint if agrees else generator.getstate  # another layout: read it whole


def _numpy_random_probe(generator: Any) -> Callable[[], Any]:
    """A fingerprint of NumPy's global ``RandomState``: for Mersenne Twister (its default), the
    position and first and last words of the bit generator's state (found by its documented
    ``ctypes.state_address``) and the normal it has cached (found in the ``RandomState`` by
    the pointers around it); for another bit generator, its whole state."""
    import ctypes

    bits = generator._bit_generator
    whole = functools.partial(_numpy_state, generator)
    if type(bits).__name__ != "MT19937" or sys.implementation.name != "cpython":
        return whole
    address = bits.ctypes.state_address
    words = (ctypes.c_uint32 * 625).from_address(address)  # 624 words, then the position
    step = ctypes.sizeof(ctypes.c_void_p)
    pointers = (ctypes.c_void_p * (type(generator).__basicsize__ // step)).from_address(
        id(generator))
    # its copy of the bit generator's functions starts with the state's address, and 5
    # pointers on comes the cached normal's record, which starts with the copy's own address
    found = [i for i in range(len(pointers) - 8) if pointers[i] == address
             and pointers[i + 5] == id(generator) + step * i]
    if len(found) != 1:
        return whole
    has_gauss = ctypes.c_int.from_address(id(generator) + step * (found[0] + 6))
    gauss = ctypes.c_double.from_address(id(generator) + step * (found[0] + 7))

    def fingerprint() -> Any:
        return words[624], words[0], words[623], has_gauss.value, gauss.value

    state = generator.get_state(legacy=False)
    agrees = (state["state"]["pos"] == words[624] and state["has_gauss"] == has_gauss.value
              and state["gauss"] == gauss.value and list(state["state"]["key"]) == words[:624])
    return fingerprint if agrees else whole


#: Each generator's fingerprint reader, made once: (generator, its bit generator, reader).
_random_probes: dict[str, list] = {"python": [None, None, None], "numpy": [None, None, None]}


def _fingerprint(kind: str, generator: Any, bits: Any, make: Callable[[Any], Callable]) -> Any:
    probe = _random_probes[kind]
    if probe[0] is not generator or probe[1] is not bits:  # a new generator (or none yet)
        probe[:] = [generator, bits, make(generator)]
    return probe[2]()


def _numpy_random_read() -> Any:
    generator = getattr(sys.modules.get("numpy.random.mtrand"), "_rand", None)
    if generator is None:
        return None
    return _fingerprint("numpy", generator, getattr(generator, "_bit_generator", None),
                        _numpy_random_probe)


def _numpy_state(generator: Any) -> bytes:
    """A ``RandomState``'s whole state, comparable (an array inside is not)."""
    return pickle.dumps(generator.get_state(legacy=False))


def _numpy_random_state() -> bytes:
    return _numpy_state(sys.modules["numpy.random.mtrand"]._rand)


def _random_read(module: Any) -> Any:
    generator = getattr(module, "_inst", None)
    if generator is None:
        return None
    return _fingerprint("python", generator, None, _python_random_probe)


def _drawn_state(drawn: Any, now: Any, state: Callable[[], Any]) -> Any:
    """A generator's state as a setting: read whole if ``drawn`` is its fingerprint now; else
    (an earlier snapshot's) a stand-in that equals no state, so that the change crosses."""
    return state() if drawn == now else ("drawn before", drawn)


def _random_spell(module: Any, state: Any) -> dict[str, Any]:
    return {"state": _drawn_state(state, _random_read(module), module.getstate)}


def _random_write(module: Any, name: str, value: Any) -> None:
    module.setstate(value)


# warnings: the filters, in order (``warnings.filterwarnings('ignore')``, ``simplefilter``).
# Each crosses as text, its category by name, so that one of a library the other side lacks
# drops that filter only; one of a class a cell made matches that class by its name
# (:class:`CellsCategory`).

def _warnings_read(module: Any) -> tuple:
    return tuple(module.filters), _shown_now(), recording_into(module) is not None


def recording_into(module: Any) -> list | None:
    """The list ``catch_warnings(record=True)`` records this side's warnings into while it is
    entered (its hook is the list's ``append``), else None."""
    hook = getattr(module, "_showwarnmsg_impl", None)
    owner = getattr(hook, "__self__", None)
    return owner if type(owner) is list and getattr(hook, "__name__", None) == "append" \
        else None


#: Python's own hook that shows a warning, as this module found it: what a side goes back to
#: when the other side's recording ended (``cw.__exit__()`` in a plain cell, hunt 25 H25-13).
_SHOW_HOOK = getattr(warnings, "_showwarnmsg_impl", None) \
    if recording_into(warnings) is None else None


def _warnings_spell(module: Any, state: tuple) -> dict[str, Any]:
    filters, shown, recording = state
    entries = []
    for action, message, category, where, lineno in filters:
        entries.append((action, _pattern_text(message), _class_name(category),
                        _pattern_text(where), lineno))
    # which warnings were shown goes again with filters that changed: setting them makes the
    # other side forget what it was told (its registries start over, as this side's did)
    return {"filters": tuple(entries), "shown": (tuple(entries), shown), "recording": recording}


def _class_name(kind: Any) -> tuple[str, str]:
    return getattr(kind, "__module__", ""), getattr(kind, "__qualname__", "")


def _pattern_text(pattern: Any) -> Any:
    """A filter's message or module as it crosses: None (any), a plain string (Python's own
    default filters match ``'__main__'`` exactly), or a regular expression's (text, flags)."""
    if pattern is None or isinstance(pattern, str):
        return pattern
    return getattr(pattern, "pattern", ""), getattr(pattern, "flags", 0)


def _pattern_of(text: Any) -> Any:
    import re

    return re.compile(*text) if isinstance(text, tuple) else text


def _warning_class(module_name: str, qualname: str) -> Any:
    try:
        found: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception:
        return None
    return found if isinstance(found, type) and issubclass(found, Warning) else None


class CellsCategory:
    """In a warnings filter, a category a cell defined (``class MyWarn(UserWarning)`` in the
    notebook), which is not bound here when the filter comes, as the run's names come after
    the settings (hunt 22 H22-13: the filter was dropped, so a warning the notebook silenced
    showed in a remote cell): it matches a warning of a class of that module and name, or of
    a subclass of one, when it is warned."""

    def __init__(self, module_name: str, qualname: str) -> None:
        self.__module__, self.__qualname__ = module_name, qualname
        self.__name__ = qualname.rpartition(".")[2]

    def _named(self, kind: Any) -> bool:
        return getattr(kind, "__module__", None) == self.__module__ \
            and getattr(kind, "__qualname__", None) == self.__qualname__

    def __subclasscheck__(self, kind: Any) -> bool:  # issubclass(warned, this): Python's and C's
        return isinstance(kind, type) and any(self._named(base) for base in kind.__mro__)

    def __eq__(self, other: Any) -> bool:  # `simplefilter` again replaces this filter
        return self._named(other)

    def __hash__(self) -> int:
        return hash((self.__module__, self.__qualname__))

    def __repr__(self) -> str:
        return f"<class '{self.__module__}.{self.__qualname__}'>"


def _warnings_write(module: Any, name: str, value: Any) -> None:
    if name == "shown":
        _mark_shown(value[1])
        return
    if name == "recording":  # the list recorded into crosses by its name (make_current)
        if not value and recording_into(module) is not None and _SHOW_HOOK is not None:
            module._showwarnmsg_impl = _SHOW_HOOK
            module.showwarning = module._showwarning_orig
        return
    filters = []
    for action, message, category, where, lineno in value:
        kind = _warning_class(*category)
        if kind is None and category[0] == "__main__" and category[1]:
            kind = CellsCategory(*category)
        if kind is not None:
            filters.append((action, _pattern_of(message), kind, _pattern_of(where), lineno))
    module.resetwarnings()  # tells the C side the filters changed (its registries start over)
    module.filters.extend(filters)
    mutated = getattr(module, "_filters_mutated", None)
    if mutated is not None:
        mutated()


# Which warnings Python has shown once per place (its "already warned" registries: each
# module's ``__warningregistry__`` and ``warnings.onceregistry``): one process remembers what
# any cell showed, so the other side marks what this one showed, in the same registries, and
# a warning shown by a remote cell is not shown again by a plain one, nor the other way (hunt
# 16 C7). Python forgets them whenever the filters change (``catch_warnings`` too): so does
# this record. A warning of a cell's own code is left out (a remote cell's namespace is new
# each run); one of a module the receiving side has not imported is marked once it is.

class _FiltersProbe(Warning):
    """Never shown: a warning whose registry tells which version of the filters Python is at."""


#: What this process's registries hold of warnings shown (or marked) since the filters last
#: changed: (module or None for ``onceregistry``, text, category's (module, qualname), line)
#: → the filters' version then.
_shown: dict[tuple, int] = {}
#: At most this many are recorded (the oldest go): a registry is no log.
SHOWN_KEPT = 500
#: The module of each file a warning was shown for (None: none), while ``sys.modules`` holds
#: as many modules as the count kept under the key None.
_modules_of_files: dict[Any, Any] = {}


def _filters_version() -> Any:
    """The version of the warnings filters Python is at (it starts its registries over when it
    changes); None where it cannot be told. One warning that is never shown."""
    registry: dict = {}
    with unshown_warnings():
        try:
            warnings.warn_explicit("remote_magics: the filters' version", _FiltersProbe,
                                   "<remote_magics>", 0, registry=registry)
        except Warning:  # an "error" filter
            pass
    return registry.get("version")


def _shown_now() -> frozenset:
    """The shown warnings recorded here that Python still remembers."""
    if not _shown:
        return frozenset()
    version = _filters_version()
    for entry in [entry for entry, then in _shown.items() if then != version]:
        del _shown[entry]
    return frozenset(_shown)


def _module_of_file(filename: str) -> str | None:
    """The name of the imported module whose file is ``filename`` (None: a cell's code); a
    pass over the modules once per file (a warning shown in a loop costs a lookup)."""
    if _modules_of_files.get(None) != len(sys.modules):
        _modules_of_files.clear()
        _modules_of_files[None] = len(sys.modules)
    if filename not in _modules_of_files:
        _modules_of_files[filename] = next(
            (name for name, module in list(sys.modules.items())
             if getattr(module, "__file__", None) == filename), None)
    return _modules_of_files[filename]


def _note_shown(message: Any) -> None:
    """Record what the registries hold of the warning ``message`` (a ``WarningMessage``)
    Python is showing: their entries are made before it is shown."""
    category = message.category
    if category is _FiltersProbe or not isinstance(message.filename, str):
        return
    module = _module_of_file(message.filename)
    registry = getattr(sys.modules.get(module), "__dict__", {}).get("__warningregistry__") \
        if module else None
    if not isinstance(registry, dict):
        return
    text = str(message.message) if isinstance(message.message, Warning) else message.message
    version, kind = registry.get("version"), _class_name(category)
    for lineno in {message.lineno, 0}:
        if registry.get((text, category, lineno)):
            _shown[(module, text, kind, lineno)] = version
    if warnings.onceregistry.get((text, category)):
        _shown[(None, text, kind, None)] = version
    while len(_shown) > SHOWN_KEPT:
        del _shown[next(iter(_shown))]


#: Shown warnings of modules not imported here yet: marked once they are (the inputs of a run
#: import them after its settings are taken).
_unmarked: dict[tuple, None] = {}


def _mark_shown(entries: Any) -> None:
    """Mark the warnings the other side showed as shown here (see :func:`_note_shown`)."""
    version = _filters_version()
    for entry in entries:
        module, text, kind, lineno = entry
        category = _warning_class(*kind)
        if category is None or _shown.get(entry, _ABSENT) == version:
            continue
        if module is None:
            warnings.onceregistry[(text, category)] = True
        else:
            found = sys.modules.get(module)
            if found is None:
                _unmarked[entry] = None
                while len(_unmarked) > SHOWN_KEPT:
                    del _unmarked[next(iter(_unmarked))]
                continue
            _unmarked.pop(entry, None)
            registry = found.__dict__.setdefault("__warningregistry__", {})
            if registry.get("version") != version:  # what Python does before it looks
                registry.clear()
                registry["version"] = version
            registry[(text, category, lineno)] = True
        _shown[entry] = version


def watch_shown_warnings() -> None:
    """Record, from now on, which warnings this process shows (once per process)."""
    showing = getattr(warnings, "_showwarnmsg", None)
    if showing is None or getattr(showing, "remote_magics_watches", False):
        return

    def show(message: Any) -> None:
        try:
            _note_shown(message)
        except Exception:  # noqa: BLE001 - recording must never keep a warning from showing
            pass
        showing(message)

    show.remote_magics_watches = True  # type: ignore[attr-defined]
    warnings._showwarnmsg = show  # type: ignore[attr-defined]


#: pandas' option tree as last walked: the tree, each dict in it (its branches) with the
#: prefix of its options' names, the dicts alone, and how many entries each had.
_pandas_walked: list = [None, [], [], ()]


def _pandas_branches(module: Any) -> tuple[list, tuple]:
    """pandas' option branches ((prefix, dict) each) and their sizes, walked again only when
    an option was registered since (a library that registers its own)."""
    tree = module._config.config._global_config
    root, branches, dicts, sizes = _pandas_walked
    if root is not tree or tuple(map(len, dicts)) != sizes:
        branches, stack = [], [("", tree)]
        while stack:
            prefix, branch = stack.pop()
            branches.append((prefix, branch))
            stack += [(prefix + name + ".", value) for name, value in branch.items()
                      if isinstance(value, dict)]
        dicts = [branch for _, branch in branches]
        sizes = tuple(map(len, dicts))
        _pandas_walked[:] = [tree, branches, dicts, sizes]
    return branches, sizes


def _pandas_read(module: Any) -> tuple:
    _pandas_branches(module)
    _, _, dicts, sizes = _pandas_walked
    return (sizes, *map(tuple, map(dict.values, dicts)))


def _pandas_spell(module: Any, state: tuple) -> dict[str, Any] | None:
    branches, sizes = _pandas_branches(module)
    if state[0] != sizes:  # read before an option was registered: cannot be spelled out
        return None
    return {prefix + name: value for (prefix, branch), values in zip(branches, state[1:])
            for name, value in zip(branch, values) if not isinstance(value, dict)}


def _pandas_write(module: Any, name: str, value: Any) -> None:
    # a deprecated option warns when set: the cell that set it warned, this side does not
    # (set all the same: `future.infer_string`, pandas 3's own advice, decides what every
    # constructor infers; skipped, a remote DataFrame had `str` where plainly `object`: hunt
    # 31 H31-7)
    if name in getattr(module._config.config, "_deprecated_options", {}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module.set_option(name, value)
        return
    module.set_option(name, value)


#: matplotlib's rcParams that say how this process draws, not how a figure looks.
_OWN_RC = frozenset({"backend", "backend_fallback", "interactive"})


def _matplotlib_read(module: Any) -> tuple:
    # dict's own view: RcParams' iteration sorts, and its item access checks each key
    return (tuple(dict.values(module.rcParams)), _inline_read(), _colormaps_read(module),
            _backend_made(), _registries_read())


def _backend_made() -> bool:
    """Whether pyplot has made its backend here (at a cell's first figure): the inline
    backend then registers IPython's figure printers, so a figure shown (``fig`` as a cell's
    last line, ``display(fig)``) is a picture. A figure a remote cell made came back to a
    notebook whose pyplot had not, and showed as ``<Figure size 640x480 with 1 Axes>``
    (hunt 31 H31-1); the backend is made on the side that lacks it, as by that cell."""
    return getattr(sys.modules.get("matplotlib.pyplot"), "_backend_mod", None) is not None


def _make_backend() -> None:
    pyplot = importlib.import_module("matplotlib.pyplot")
    if getattr(pyplot, "_backend_mod", None) is None:
        pyplot._get_backend_mod()


# matplotlib's registries a cell adds to, besides its colormaps: the converters of its units
# (pint's `setup_matplotlib()`, the gallery's `ConciseDateConverter` recipe), the scales and
# projections (`register_scale`, `register_projection`), the color sequences, the named colors,
# the style library, and the box, arrow and connection styles. Each side had its own, so a remote
# cell failed on what a plain cell had registered (hunt 31 H31-4, 5, 6): `ax.set_yscale('square')`
# raised "'square' is not a valid value for scale". A registry crosses as a whole when one side's
# changed, except that where matplotlib made a big one itself (the named colors, the styles) only
# the entries besides its own cross. (The converters pandas replaced go with them.)

def _named_colors_own(colors: Any) -> dict:
    """The named colors as :mod:`matplotlib.colors` makes them."""
    own: dict = {}
    own.update(colors.XKCD_COLORS)
    own.update({name.replace("grey", "gray"): value
                for name, value in colors.XKCD_COLORS.items() if "grey" in name})
    own.update(colors.CSS4_COLORS)
    own.update(colors.TABLEAU_COLORS)
    own.update({name.replace("gray", "grey"): value
                for name, value in colors.TABLEAU_COLORS.items() if "gray" in name})
    own.update(colors.BASE_COLORS)
    return own


_OWN_ENTRIES: dict[str, dict] = {}  # a registry's own entries, made once


def _styles_own(style: Any) -> dict:
    return style._base_library


def _scale_registered(scale: Any, name: str, value: Any) -> None:
    """A scale as ``register_scale`` registers it (it also notes whether the scale's class
    takes an axis, which ``scale_factory`` looks up)."""
    if getattr(value, "name", None) == name:
        scale.register_scale(value)
    else:
        scale._scale_mapping[name] = value


#: A registry's key → its module, how to find it there, and (or None) its own entries, which
#: stay out.
_REGISTRIES: dict[str, tuple[str, Callable[[Any], Any], Callable[[Any], dict] | None]] = {
    "units": ("matplotlib.units", lambda units: units.registry, None),
    "scales": ("matplotlib.scale", lambda scale: scale._scale_mapping, None),
    "projections": ("matplotlib.projections",
                    lambda projections: projections.projection_registry._all_projection_types,
                    None),
    "color_sequences": ("matplotlib.colors",
                        lambda colors: colors._color_sequences._color_sequences, None),
    "named_colors": ("matplotlib.colors", lambda colors: colors._colors_full_map,
                     _named_colors_own),
    "styles": ("matplotlib.style", lambda style: style.library, _styles_own),
    "box_styles": ("matplotlib.patches", lambda patches: patches.BoxStyle._style_list, None),
    "arrow_styles": ("matplotlib.patches", lambda patches: patches.ArrowStyle._style_list, None),
    "connection_styles": ("matplotlib.patches",
                          lambda patches: patches.ConnectionStyle._style_list, None),
    # the converters pandas' `register_matplotlib_converters()` replaced, which its `deregister`
    # puts back: without them, one registered remotely and deregistered plainly left no
    # converter of dates at all
    "pandas_replaced": ("pandas.plotting._matplotlib.converter",
                        lambda converter: converter._mpl_units, None),
}


def _own_entries(key: str, module: Any) -> dict:
    own = _OWN_ENTRIES.get(key)
    if own is None:
        own = _OWN_ENTRIES[key] = _REGISTRIES[key][2](module)
    return own


def _registries_read() -> tuple:
    """Each registry of a module imported here, as ``(key, entries)``: its entries besides
    matplotlib's own where it has many (none while it has as many as its own: a name added
    makes it longer)."""
    found = []
    for key, (module_name, find, own_of) in _REGISTRIES.items():
        module = sys.modules.get(module_name)
        if module is None:
            continue
        try:
            registry = find(module)
            if own_of is None:
                found.append((key, tuple(dict.items(registry))))
                continue
            own = _own_entries(key, module)
            if key == "named_colors" and len(registry) == len(own):
                found.append((key, ()))
                continue
            # by identity: its own entries are the objects it made (one set back is so again)
            found.append((key, tuple(item for item in dict.items(registry)
                                     if own.get(item[0], _ABSENT) is not item[1])))
        except Exception:  # a version that keeps it elsewhere: it does not cross
            continue
    return tuple(found)


def _registry_write(key: str, entries: dict) -> None:
    """Make a registry here hold ``entries`` (and its own ones). A unit converter of the class
    one here has stays (it may hold this side's objects: pint's holds its unit registry)."""
    module_name, find, own_of = _REGISTRIES[key]
    module = importlib.import_module(module_name)
    registry = find(module)
    own = _own_entries(key, module) if own_of is not None else {}
    for name in [name for name in registry if name not in entries]:
        if name not in own:
            del registry[name]
        elif not _same(registry[name], own[name]):
            registry[name] = own[name]
    for name, value in entries.items():
        here = registry.get(name, _ABSENT)
        if key == "units" and type(here) is type(value):
            continue
        if here is not _ABSENT and _same(here, value):
            continue
        if key == "scales":
            _scale_registered(module, name, value)
        else:
            registry[name] = value


def _colormaps_read(module: Any) -> tuple:
    """The colormaps registered besides matplotlib's own (``colormaps.register(cmap)``): a plain
    cell's ``imshow(cmap='mine')`` finds one a remote cell registered (hunt 19 H19-19)."""
    registry = getattr(module, "colormaps", None)
    made, builtin = getattr(registry, "_cmaps", None), getattr(registry, "_builtin_cmaps", ())
    if not isinstance(made, dict) or len(made) == len(builtin):
        return ()
    return tuple((name, cmap) for name, cmap in made.items() if name not in builtin)


def _matplotlib_spell(module: Any, state: tuple) -> dict[str, Any] | None:
    values, inline, colormaps, made, registries = state
    names = tuple(dict.keys(module.rcParams))
    if len(names) != len(values):
        return None
    spelled = {name: value for name, value in zip(names, values) if name not in _OWN_RC}
    spelled.update(_inline_spell(inline))
    spelled.update((f"colormap.{name}", cmap) for name, cmap in colormaps)
    spelled.update((f"registry.{key}", dict(entries)) for key, entries in registries)
    if made:
        spelled["backend_made"] = True
    return spelled


def _matplotlib_write(module: Any, name: str, value: Any) -> None:
    if name.startswith("inline."):
        _inline_write(name[len("inline."):], value)
        return
    if name.startswith("colormap."):
        module.colormaps.register(value, name=name[len("colormap."):], force=True)
        return
    if name.startswith("registry."):
        _registry_write(name[len("registry."):], value)
        return
    if name == "backend_made":
        if value:
            _make_backend()
        return
    module.rcParams[name] = value


# The inline backend's settings, with matplotlib's: the formats a cell's figures are shown in
# (``%config InlineBackend.figure_format = 'retina'``) and how they are printed. The engine
# shows a remote cell's figures with its own inline backend. Until a process draws its first
# figure the backend is not made, and ``%config`` keeps them in the shell's configuration,
# where the backend finds them when it is.

_INLINE = ("figure_formats", "print_figure_kwargs", "close_figures")


def _inline_backend() -> Any:
    config = sys.modules.get("matplotlib_inline.config")
    return getattr(getattr(config, "InlineBackend", None), "_instance", None)  # once made


def _inline_read() -> tuple:
    made = _inline_backend()
    if made is not None:  # its traits' own store: no trait lookups
        return (*(made._trait_values.get(name) for name in _INLINE), _formats_shown())
    shell = _shell()
    section = dict.get(shell.config, "InlineBackend") if shell is not None else None
    if not section:
        return None, None, None, _formats_shown()
    formats = section.get("figure_formats") or (
        {section["figure_format"]} if section.get("figure_format") else None)
    return (formats, section.get("print_figure_kwargs"), section.get("close_figures"),
            _formats_shown())


#: The display formats IPython's own figure printers make (``select_figure_formats``), by the
#: formatter's type.
_FIGURE_FORMATS = (("image/png", "png"), ("image/jpeg", "jpeg"), ("image/svg+xml", "svg"),
                   ("application/pdf", "pdf"))


def _formats_shown() -> tuple | None:
    """The formats a figure is shown in, as the shell's display formatters have IPython's
    figure printers: ``set_matplotlib_formats('svg')`` sets those, and not the inline
    backend's ``figure_formats`` (hunt 22 H22-4: so it did not cross). None without IPython's
    printers (a printer of your own for ``Figure`` crosses as such a printer does)."""
    figure = getattr(sys.modules.get("matplotlib.figure"), "Figure", None)
    shell = _shell()
    if figure is None or shell is None:
        return None
    formatters = _formatters()
    shown = []
    for mime, name in _FIGURE_FORMATS:
        printer = getattr(formatters.get(mime), "type_printers", {}).get(figure)
        made_by = getattr(getattr(printer, "func", None), "__name__", None)
        if made_by == "retina_figure" and mime == "image/png":
            shown.append("retina")
        elif made_by == "print_figure":
            shown.append(name)
    return tuple(shown) or None


def _inline_spell(inline: tuple) -> dict[str, Any]:
    formats, kwargs, close, shown = inline or (None, None, None, None)
    formats = shown or formats
    spelled = {"inline.figure_formats": tuple(sorted(formats)) if formats else None,
               "inline.print_figure_kwargs": kwargs, "inline.close_figures": close}
    return {name: value for name, value in spelled.items() if value is not None}


def _inline_write(name: str, value: Any) -> None:
    value = set(value) if name == "figure_formats" else value
    made = _inline_backend()
    shell = _shell()
    if made is not None:
        setattr(made, name, value)  # it shows figures so from now on
    elif shell is not None:  # where the backend looks when it is made
        shell.config.InlineBackend[name] = value
    # and IPython's figure printers, which a backend without its shell leaves as they are
    # (IPython's, loaded where a figure was shown: there are printers to change then)
    pylabtools = sys.modules.get("IPython.core.pylabtools")
    shown = _formats_shown() if name == "figure_formats" and shell is not None else None
    if shown is not None and pylabtools is not None and set(shown) != value:
        kwargs = made.print_figure_kwargs if made is not None else {}
        pylabtools.select_figure_formats(shell, value, **kwargs)


# logging: the ``disable`` level, and each logger's level, propagation, whether disabled, its
# filters and its handlers that mean the same on either side (a stream handler to this
# process's ``sys.stdout`` or ``sys.stderr``, which a kernel shows as the cell's output, and a
# null handler), with their filters (copies; one that cannot be pickled stays); others (a
# file's, a socket's, a buffer's) stay on their side, with their filters, and the notebook's
# get a stand-in in the engine (:class:`Forwarding`) that sends the
# records a remote cell logs to them: a log file the notebook configured gets the lines of
# remote cells too, as of plain ones. A handler the engine made stays there.

#: Loggers of the processes' own machinery (the kernel's, its event loop's): theirs stay apart.
_OWN_LOGGERS = ("tornado", "traitlets", "asyncio", "IPKernelApp", "ipykernel", "jupyter_client",
                "remote_magics", "zmq", "concurrent")

#: Set by an engine (:meth:`..engine.core.Engine`): sends a record a :class:`Forwarding`
#: handler took to the notebook that asked for it, as a ``remote_log_record`` message.
log_forwarder: Callable[[dict], None] | None = None


class Forwarding(logging.Handler):
    """In the engine, the notebook's handlers of one logger that cannot be made here (a file's,
    a buffer's): each record it takes goes to the notebook, whose handlers handle it there
    (:func:`take_log_record`)."""

    def __init__(self, logger_name: str, level: int) -> None:
        super().__init__(level)
        self.logger_name = logger_name

    def emit(self, record: logging.LogRecord) -> None:
        forward = log_forwarder
        if forward is None or getattr(_forwarding, "now", False):  # one sending logs: not again
            return
        _forwarding.now = True
        try:
            forward({"logger": self.logger_name, "record": _record_fields(record)})
        except Exception:  # noqa: BLE001 - as any handler: logging says so, the cell goes on
            self.handleError(record)
        finally:
            _forwarding.now = False


_forwarding = threading.local()  # whether this thread is sending a record now


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """A record as JSON: its message made, its exception as text (its traceback cannot go),
    what else it holds (a call's ``extra``) as it is when JSON can carry it, else its repr."""
    fields = dict(vars(record))
    fields["msg"], fields["args"] = record.getMessage(), None
    if record.exc_info and not record.exc_text:
        fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
    fields["exc_info"] = None
    return {key: value if value is None or isinstance(value, (str, int, float, bool))
            else repr(value) for key, value in fields.items()}


def take_log_record(content: Any) -> None:
    """In the notebook: a record a remote cell logged, handled by the handlers of the logger it
    names that did not cross (those :class:`Forwarding` stands in for), as a plain cell's is."""
    if not isinstance(content, dict) or not isinstance(content.get("record"), dict) \
            or not isinstance(content.get("logger"), str):
        return
    logger = logging.getLogger(content["logger"] or None)
    record = logging.makeLogRecord(content["record"])
    for handler in logger.handlers:
        if _portable_handler(logging, handler) is None and record.levelno >= handler.level:
            handler.handle(record)


def _forwarded(logger_name: str, handler: Any, level: int) -> tuple | None:
    """How the other side stands in for a handler that cannot be made there (see
    :class:`Forwarding`), or None for one of the processes' own machinery."""
    if isinstance(handler, Forwarding) or logger_name.partition(".")[0] in _OWN_LOGGERS:
        return None
    return ("forward", "", level, None, ())

#: The loggers once seen configured here: listed from then on, so that going back to the
#: defaults (``setLevel(NOTSET)``, handlers removed) crosses too.
_loggers_seen: set[str] = set()
#: The record factory and logger class, once either was set here: listed from then on.
_logging_set_once: set[str] = set()


def _logging_handlers(module: Any, handlers: list) -> tuple:
    return tuple((handler, handler.level, handler.formatter, tuple(handler.filters))
                 for handler in handlers)


def _portable_filters(filters: tuple) -> tuple:
    """The filters a cell put on a logger or handler, which go to the other side, each as a
    copy there (hunt 22 H22-1: none crossed, so a filter a remote cell added left the notebook
    logging what it was meant to drop): a ``logging.Filter``, one of a class or a function a
    cell defined (``log.addFilter(lambda r: ...)``), if it can be pickled. A library's own (a
    rate limiter ``distributed`` puts on its loggers) stays: its library, imported on the
    other side, puts its own there, and unpickling one would import the library there."""
    portable = []
    for each in filters:
        if not _cells_own(each):
            continue
        try:
            cloudpickle.dumps(each)
        except Exception:
            continue
        portable.append(each)
    return tuple(portable)


def _cells_own(obj: Any) -> bool:
    """Whether ``obj`` is logging's plain ``Filter``, or a function, class or object of a
    class that a cell defined."""
    if type(obj) is logging.Filter:
        return True
    made = obj if isinstance(obj, (type, types.FunctionType)) else type(obj)
    return getattr(made, "__module__", None) == "__main__"


def _set_filters(filterer: Any, filters: tuple) -> None:
    for each in list(filterer.filters):
        filterer.removeFilter(each)
    for each in filters:
        filterer.addFilter(each)


def _logging_read(module: Any) -> tuple:
    manager, root = module.Logger.manager, module.root
    whole = (manager.disable, tuple(module._levelToName.items()),
             module.getLogRecordFactory(), module.getLoggerClass())
    entries = [whole, ("", root.level, root.propagate, root.disabled,
                                 _logging_handlers(module, root.handlers), tuple(root.filters))]
    logger_class, seen = module.Logger, _loggers_seen
    for name, logger in manager.loggerDict.items():
        if not isinstance(logger, logger_class):  # a placeholder for a dotted name's parent
            continue
        if name not in seen:
            if not (logger.level or logger.handlers or not logger.propagate or logger.disabled
                    or logger.filters):
                continue
            seen.add(name)
        entries.append((name, logger.level, logger.propagate, logger.disabled,
                        _logging_handlers(module, logger.handlers), tuple(logger.filters)))
    return tuple(entries)


def _portable_handler(module: Any, handler: Any, state: tuple | None = None) -> tuple | None:
    """How a handler is made again on the other side, or None (it stays on its own); from its
    ``state`` as read (level, formatter, filters), else as it is now."""
    if isinstance(handler, Forwarding):  # the notebook's, which stays there
        return None
    level, formatter, filters = state if state is not None else (
        handler.level, handler.formatter, tuple(handler.filters))
    if type(handler) is module.NullHandler:
        return ("null", "", level, None, _portable_filters(filters))
    if type(handler) is module.StreamHandler:
        stream = ("stdout" if handler.stream is sys.stdout else
                  "stderr" if handler.stream is sys.stderr else None)
        if stream is not None:
            return ("stream", stream, level, formatter, _portable_filters(filters))
    return None


def _logging_spell(module: Any, state: tuple) -> dict[str, Any]:
    (disable, levels, factory, logger_class), *loggers = state
    # the level names a cell added (`addLevelName(25, 'NOTICE')`), the record factory and the
    # logger class a cell set (hunt 22 H22-1: a record factory's attributes, which a format
    # names, were missing on the other side: "--- Logging error ---")
    spelled: dict[str, Any] = {"disable": disable, "levels": levels}
    for key, value, default in (("record_factory", factory, module.LogRecord),
                                ("logger_class", logger_class, module.Logger)):
        if value is not default and _cells_own(value):  # not a library's (see above)
            _logging_set_once.add(key)
        if key in _logging_set_once and (value is default or _cells_own(value)):
            spelled[key] = value
    for name, level, propagate, disabled, handlers, filters in loggers:
        made = tuple(filter(None, (_portable_handler(module, handler, tuple(as_read))
                                   or _forwarded(name, handler, as_read[0])
                                   for handler, *as_read in handlers)))
        spelled["logger." + name] = (level, propagate, disabled, made, _portable_filters(filters))
    return spelled


def _logging_write(module: Any, name: str, value: Any) -> None:
    if name == "disable":
        module.disable(value)
        return
    if name == "levels":
        for level, level_name in value:
            if module.getLevelName(level) != level_name:
                module.addLevelName(level, level_name)
        return
    if name == "record_factory":
        _logging_set_once.add(name)
        module.setLogRecordFactory(value)
        return
    if name == "logger_class":
        _logging_set_once.add(name)
        module.setLoggerClass(value)
        return
    level, propagate, disabled, handlers, filters = value
    logger = module.getLogger(name[len("logger."):] or None)
    logger.setLevel(level)
    logger.propagate, logger.disabled = propagate, disabled
    _set_filters(logger, filters)
    for handler in [h for h in logger.handlers if _portable_handler(module, h) is not None
                    or isinstance(h, Forwarding)]:
        logger.removeHandler(handler)
    for kind, stream, handler_level, formatter, handler_filters in handlers:
        if kind == "forward":  # a handler of the notebook's: its records go there
            if log_forwarder is not None:
                logger.addHandler(Forwarding(logger.name if logger is not module.root else "",
                                             handler_level))
            continue
        handler = (module.NullHandler() if kind == "null" else
                   module.StreamHandler(getattr(sys, stream)))
        handler.setLevel(handler_level)
        handler.setFormatter(formatter)
        _set_filters(handler, handler_filters)
        logger.addHandler(handler)


# os: the environment variables a cell set or deleted (those that differ from what the process
# started with), and the working directory. A variable that names this machine or process
# (``PATH``, ``HOME``, a kernel's own) stays on its side; the working directory crosses only to
# the same directory (same device and inode: a target on this host).

#: Environment variables that stay each process's own (and those starting with a prefix below).
_OWN_ENVIRON = frozenset({
    "PATH", "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH", "LD_PRELOAD", "HOME", "PWD", "OLDPWD",
    "SHELL", "USER", "LOGNAME", "HOSTNAME", "TMPDIR", "TEMP", "TMP", "DISPLAY", "MPLBACKEND",
    "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "_"})
_OWN_ENVIRON_PREFIXES = ("JPY_", "JUPYTER_", "IPY", "PYDEVD", "REMOTE_MAGICS_", "SSH_", "XDG_",
                         "KERNEL_", "VSCODE_")
_environ_seen: set[str] = set()  # once set by a cell: listed from then on (its deletion too)
_environ_started: dict[str, str] | None = None


def _environ_at_start() -> dict[str, str]:
    """The environment this process started with (Linux keeps it apart from ``os.environ``);
    elsewhere, the one it had when first asked."""
    global _environ_started
    if _environ_started is None:
        import os

        try:
            with open("/proc/self/environ", "rb") as raw:
                pairs = [item.split(b"=", 1) for item in raw.read().split(b"\0") if b"=" in item]
            _environ_started = {os.fsdecode(k): os.fsdecode(v) for k, v in pairs}
        except OSError:
            _environ_started = dict(os.environ)
    return _environ_started


def _os_read(module: Any) -> tuple:
    environ = module.environ
    data = getattr(environ, "_data", None)  # the bytes behind it: no decoding per read
    return (tuple(data.items()) if isinstance(data, dict) else tuple(environ.items()),
            module.getcwd())


def _os_spell(module: Any, state: tuple) -> dict[str, Any]:
    items, cwd = state
    spelled: dict[str, Any] = {}
    try:
        found = module.stat(cwd)
        spelled["cwd"] = (cwd, found.st_dev, found.st_ino)
    except OSError:
        pass
    started, decode = _environ_at_start(), module.fsdecode
    now = {decode(name): decode(value) for name, value in items}
    changed = {name for name in now if started.get(name) != now[name]}
    changed |= {name for name in started if name not in now}
    _environ_seen.update(name for name in changed if name not in _OWN_ENVIRON
                         and not name.startswith(_OWN_ENVIRON_PREFIXES))
    spelled.update(("environ." + name, now.get(name)) for name in _environ_seen)
    return spelled


def _os_write(module: Any, name: str, value: Any) -> None:
    if name == "cwd":
        path, device, inode = value
        found = module.stat(path)
        if (found.st_dev, found.st_ino) == (device, inode):  # the same directory: this host
            module.chdir(path)
        return
    variable = name[len("environ."):]
    _environ_seen.add(variable)
    if value is None:
        module.environ.pop(variable, None)
    else:
        module.environ[variable] = value
    if variable == "TZ" and hasattr(time, "tzset"):
        time.tzset()  # as a cell that sets TZ does (time.tzname follows)


# sys: the recursion limit, and the folders a cell put on ``sys.path`` (``sys.path.append('..')``
# then an import): each crosses, at the front or the end as it was put, and is added where
# missing; what the process's path had when this module was loaded stays each side's own.

_path_at_start = tuple(sys.path)
#: The import hooks (``sys.meta_path`` finders) this process had when this module was loaded;
#: those a cell adds of a class of the notebook's own cross (IPython's "Importing Notebooks":
#: a finder that imports notebooks), a library's stay each side's own (``pyximport.install()``
#: there installs it there).
_path_taken: list = []  # the folders the other side's added ones put on sys.path here


class _Hooks:
    """One of ``sys``'s lists of import hooks (``meta_path``, ``path_hooks``): the hooks a cell
    added of a class or function of the notebook's own, or of one of your modules, cross (a
    finder that imports notebooks; hunt 43 H43-1, H43-3: a remote ``import virt`` they answer
    failed); a library's stay each side's own (``pyximport.install()`` there installs it
    there), and so do those this process had when this module was loaded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.at_start = list(getattr(sys, name))
        self.taken: list = []  # the hooks the other side sent, in the list here
        self.seen = False  # once a cell's hook was seen: its removal crosses too

    @staticmethod
    def _cells(hook: Any) -> bool:
        module = getattr(hook, "__module__", None) if isinstance(hook, (type, types.FunctionType)) \
            else type(hook).__module__
        return module == "__main__" or serialize.your_module(module) is not None

    def spell(self, hooks: tuple, spelled: dict) -> None:
        """Put the cells' hooks among ``hooks`` (the list's state) in ``spelled``."""
        front, back = _added(hooks, {id(hook) for hook in self.at_start}, key=id,
                             keep=self._cells)
        if front or back or self.seen:
            self.seen = True
            spelled[self.name] = (front, back)

    def write(self, value: tuple) -> None:
        """The other side's hooks, instead of those it sent before."""
        hooks = getattr(sys, self.name)
        for hook in self.taken:
            if hook in hooks:
                hooks.remove(hook)
        front, back = value
        hooks[:0] = front
        hooks.extend(back)
        self.taken[:] = [*front, *back]
        self.at_start.extend(self.taken)  # not this side's to send back
        self.seen = True
        if self.name == "path_hooks":  # a folder no hook took before may be one of theirs now
            for entry, finder in list(sys.path_importer_cache.items()):
                if finder is None:
                    sys.path_importer_cache.pop(entry, None)


_HOOKS = {name: _Hooks(name) for name in ("meta_path", "path_hooks")}


def _sys_read(module: Any) -> tuple:
    return (module.getrecursionlimit(), tuple(module.path),
            getattr(module, "get_int_max_str_digits", lambda: None)(), tuple(module.meta_path),
            getattr(module, "last_value", None), tuple(module.path_hooks))


def _added(items: tuple, started: set, key: Callable[[Any], Any] = lambda item: item,
           keep: Callable[[Any], bool] = lambda item: True) -> tuple[tuple, tuple]:
    """The ``items`` (that ``keep`` keeps) whose ``key`` is not among ``started``, the
    process's own at its start: those before the first of its own, and those after."""
    first = next((index for index, item in enumerate(items) if key(item) in started),
                 len(items))
    added = [(index < first, item) for index, item in enumerate(items)
             if key(item) not in started and keep(item)]
    return (tuple(item for front, item in added if front),
            tuple(item for front, item in added if not front))


def _sys_spell(module: Any, state: tuple) -> dict[str, Any]:
    limit, path, digits, meta_path, last, path_hooks = state
    spelled = {"recursionlimit": limit, "path": _added(path, set(_path_at_start))}
    # the last error a cell showed (%tb, %debug, pdb.pm() read it): its traceback does not
    # cross (frames cannot travel); one an engine raised is that engine's, which keeps it with
    # its traceback (hunt 27 H27-3: sent back, it made a remote `%debug` fail)
    if last is not None and not _an_engines_error(last):
        spelled["last_value"] = last
    if digits is not None:  # sys.set_int_max_str_digits (Python 3.11 and later)
        spelled["int_max_str_digits"] = digits
    _HOOKS["meta_path"].spell(meta_path, spelled)
    _HOOKS["path_hooks"].spell(path_hooks, spelled)
    return spelled


def _an_engines_error(err: Any) -> bool:
    """Whether ``err`` is the notebook's copy of an error a remote cell raised (a
    ``RemoteError``: it names its target and shows the remote traceback)."""
    return isinstance(getattr(type(err), "target", None), str) \
        and callable(getattr(type(err), "_render_traceback_", None)) \
        and isinstance(getattr(err, "evalue", None), str)


def _sys_write(module: Any, name: str, value: Any) -> None:
    if name == "last_value":  # as IPython sets them when it shows an error
        module.last_type, module.last_value = type(value), value
        module.last_traceback = getattr(value, "__traceback__", None)
        if sys.version_info >= (3, 12):
            module.last_exc = value
        return
    if name == "recursionlimit":
        module.setrecursionlimit(value)
        return
    if name == "int_max_str_digits":
        module.set_int_max_str_digits(value)
        return
    if name in _HOOKS:
        _HOOKS[name].write(value)
        return
    front, back = value  # the other side's added folders: those it took out since go here too
    wanted = {*front, *back}  # (`sys.path.remove(p)` after it went: hunt 39 H39-8e)
    for entry in [entry for entry in _path_taken if entry not in wanted]:
        while entry in module.path:
            module.path.remove(entry)
    missing = [entry for entry in front if entry not in module.path]
    module.path[:0] = missing
    later = [entry for entry in back if entry not in module.path]
    module.path.extend(later)
    _path_taken[:] = [*(entry for entry in _path_taken if entry in wanted), *missing, *later]


# IPython: how the shell shows a result as text (``%precision 2``, ``%pprint``). The engine
# formats a remote cell's result with its own shell's formatter.

_formatter_of: list = [None, None]  # the shell, and its text/plain formatter, as last found


def _shell() -> Any:
    """IPython's shell in this process, or None (the singleton itself: ``get_ipython()`` costs
    more than reading every setting)."""
    module = sys.modules.get("IPython.core.interactiveshell")
    return getattr(getattr(module, "InteractiveShell", None), "_instance", None)


def _plain_formatter(make: bool = False) -> Any:
    """The shell's text formatter; None while IPython has not made it (:func:`_formatters`),
    unless ``make`` (a setting to write into it)."""
    shell = _shell()
    if shell is None:
        return None
    if _formatter_of[0] is not shell:
        found = _formatters(make).get("text/plain")
        if found is None:
            return None
        _formatter_of[:] = [shell, found]
    return _formatter_of[1]


def _ipython_read(module: Any) -> tuple:
    shell = _shell()
    if shell is None:
        return ()
    formatter = _plain_formatter()
    # which of a cell's statements show their values (`%config
    # InteractiveShell.ast_node_interactivity = 'all'` in a remote cell: hunt 19 H19-20), and
    # the `from __future__ import annotations` of earlier cells, which IPython's compiler keeps
    # for the later ones (H19-36)
    compiler = getattr(shell, "compile", None)
    futures = getattr(compiler, "flags", 0) & FUTURE_FLAGS
    interactivity = shell._trait_values.get("ast_node_interactivity")
    if formatter is None:  # not made yet: what `%config` said it will be made with
        section = shell.config.get("PlainTextFormatter") or {}
        return None, None, _printers_read(), interactivity, futures, tuple(
            ("config." + name, section[name]) for name in _CONFIGURED
            if isinstance(section.get(name), (bool, int, str)))
    values = formatter._trait_values  # traitlets' own store: a plain read, no observers
    return values.get("float_precision"), values.get("pprint"), _printers_read(), \
        interactivity, futures, tuple((name, values.get(name)) for name in _PLAIN_TEXT_TRAITS)


#: The text formatter's other settings a cell may change (``%config
#: PlainTextFormatter.max_seq_length = 5``: hunt 20 H20-12).
_PLAIN_TEXT_TRAITS = ("max_seq_length", "max_width", "verbose", "newline")

#: The text formatter's settings ``%config PlainTextFormatter.NAME = ...`` may give it before
#: IPython makes it: they cross as ``config.NAME``, into the other side's config (hunt 26 H26-5).
_CONFIGURED = ("pprint", "float_precision", *_PLAIN_TEXT_TRAITS)


#: The compiler flags of every ``__future__`` feature (what a cell's future import sets).
FUTURE_FLAGS = functools.reduce(
    lambda flags, name: flags | getattr(__future__, name).compiler_flag,
    __future__.all_feature_names, 0)


def _ipython_spell(module: Any, state: tuple) -> dict[str, Any]:
    if not state:
        return {}
    precision, pprint, printers, *more = state
    spelled = {name: value for name, value in (("float_precision", precision), ("pprint", pprint))
               if value is not None}
    spelled.update(_printers_spell(printers))
    if more and more[0] is not None:
        spelled["shell.ast_node_interactivity"] = more[0]
    if len(more) > 1 and more[1]:
        spelled["compile.futures"] = more[1]
    if len(more) > 2:
        spelled.update((name, value) for name, value in more[2] if value is not None and (
            name in _PLAIN_TEXT_TRAITS or name[len("config."):] in _CONFIGURED))
    return spelled


def _ipython_write(module: Any, name: str, value: Any) -> None:
    if name.startswith(("printer|", "enabled|")):
        _printer_write(name, value)
        return
    if name.startswith("shell."):
        shell = _shell()
        if shell is not None:
            setattr(shell, name[len("shell."):], value)
        return
    if name == "compile.futures":  # a future import holds for the cells after it, both sides
        compiler = getattr(_shell(), "compile", None)
        if compiler is not None and isinstance(value, int):
            compiler.flags |= value & FUTURE_FLAGS
        return
    if name.startswith("config."):  # as `%config` there: the formatter is made with it (a
        shell = _shell()             # formatter made already keeps its values, as there)
        if shell is not None and name[len("config."):] in _CONFIGURED:
            shell.config.PlainTextFormatter[name[len("config."):]] = value
        return
    formatter = _plain_formatter(make=True)
    if formatter is not None:
        setattr(formatter, name, value)


# IPython's display formatters: the functions a cell registers to show a type its way, for one
# format (``formatters['text/plain'].for_type(Dog, ...)``, ``for_type_by_name``, and what
# ``sympy.init_printing()`` registers), and whether a format is shown at all. Each crosses by
# the type's module and name (the name IPython's own deferred printers go by), so that it finds
# the other side's class of that name; one put back to the formatter's default crosses too. A
# function the kernel's own inline backend registered, or IPython's figure printers
# (``select_figure_formats``), stays each side's own: the formats a figure is shown in cross
# as the inline backend's setting (:func:`_formats_shown`), set there by IPython's own means.

#: The printers once seen registered here, as (format, module, name): listed from then on, so
#: that removing one crosses too.
_printers_seen: set[tuple[str, str, str]] = set()
_OWN_PRINTERS = ("matplotlib_inline", "ipykernel", "remote_magics", "IPython.core.pylabtools")
_printer_defaults_of: dict = {}  # (formatter's id, numpy imported) -> its default printers
#: Whether each format was shown when first read here (a terminal shows text only, a notebook
#: every format: each side keeps its own), and the formats a cell turned on or off since.
_enabled_first: dict[str, Any] = {}
_enabled_seen: set[str] = set()


def _formatters(make: bool = False) -> dict:
    """The shell's display formatters by format; none while IPython has not made them, unless
    ``make``. IPython makes them at the first result it shows, from its config then: a plain
    cell's ``%config PlainTextFormatter.max_seq_length = 3`` holds only if it comes before,
    so reading them to learn their settings must not make them (hunt 26 H26-5)."""
    shell = _shell()
    display = getattr(shell, "display_formatter", None) if shell is not None else None
    if display is None:
        return {}
    made = getattr(display, "_trait_values", {})
    found = dict(getattr(display, "formatters", None) or {}) if make or "formatters" in made \
        else {}
    # and the two outside that dict, whose printers show a type their way too
    # (`ipython_display_formatter.for_type(Temp, ...)`: hunt 26 H26-10)
    for name in _OTHER_FORMATTERS:
        if make or name in made:
            found[name] = getattr(display, name)
    return found


#: The display formatter's own formatters besides those by format.
_OTHER_FORMATTERS = ("ipython_display_formatter", "mimebundle_formatter")


def _printers_read() -> tuple:
    found = []
    for mime, formatter in _formatters().items():
        values = getattr(formatter, "_trait_values", {})
        enabled = values.get("enabled")
        _enabled_first.setdefault(mime, enabled)
        found.append((mime, enabled, tuple(values.get("type_printers", {}).items()),
                      tuple(values.get("deferred_printers", {}).items())))
    return tuple(found)


def _printer_key(kind: Any) -> tuple:
    return getattr(kind, "__module__", None), getattr(kind, "__name__", None)


def _printer_defaults(formatter: Any) -> dict:
    """The printers ``formatter`` has by default, by (module, name) of their type."""
    key = (id(formatter), "numpy" in sys.modules)  # text/plain's defaults add numpy's float
    found = _printer_defaults_of.get(key)
    if found is None:
        try:
            defaults = formatter.trait_defaults("type_printers", "deferred_printers")
        except Exception:
            defaults = {}
        found = dict(defaults.get("deferred_printers") or {})
        found.update((_printer_key(kind), function)
                     for kind, function in (defaults.get("type_printers") or {}).items())
        _printer_defaults_of[key] = found
    return found


def _is_default(function: Any, default: Any) -> bool:
    """Whether ``function`` is the formatter's default printer: itself, or made anew by the
    same code (text/plain makes its float printer for each formatter)."""
    if function is default:
        return True
    code = getattr(function, "__code__", None)
    return code is not None and code is getattr(default, "__code__", None)


def _own_printer(function: Any) -> bool:
    made_by = getattr(getattr(function, "func", function), "__module__", None) or ""
    return made_by.startswith(_OWN_PRINTERS)


def _printers_spell(printers: tuple) -> dict[str, Any]:
    formatters = _formatters()
    spelled: dict[str, Any] = {}
    for mime, enabled, by_type, by_name in printers:
        formatter = formatters.get(mime)
        if formatter is None:
            continue
        if mime in _enabled_seen or enabled != _enabled_first.get(mime, enabled):
            _enabled_seen.add(mime)
            spelled["enabled|" + mime] = enabled
        defaults = _printer_defaults(formatter)
        entries = dict(by_name)
        entries.update((_printer_key(kind), function) for kind, function in by_type)
        for (module_name, type_name), function in entries.items():
            if not isinstance(module_name, str) or not isinstance(type_name, str):
                continue
            default = defaults.get((module_name, type_name))
            if (default is not None and _is_default(function, default)) or _own_printer(function):
                continue
            _printers_seen.add((mime, module_name, type_name))
            spelled[f"printer|{mime}|{module_name}|{type_name}"] = function
    for mime, module_name, type_name in _printers_seen:
        spelled.setdefault(f"printer|{mime}|{module_name}|{type_name}", None)  # back to default
    return spelled


def _printer_write(name: str, value: Any) -> None:
    formatter = _formatters(make=True).get(name.split("|", 2)[1])
    if formatter is None:
        return
    if name.startswith("enabled|"):
        _enabled_seen.add(name[len("enabled|"):])
        formatter.enabled = value
        return
    _, mime, module_name, type_name = name.split("|", 3)
    key = (module_name, type_name)
    for kind in [kind for kind in formatter.type_printers if _printer_key(kind) == key]:
        del formatter.type_printers[kind]  # a class looked up already: found by name again
    formatter.deferred_printers.pop(key, None)
    _printers_seen.add((mime, module_name, type_name))
    function = value if value is not None else _printer_defaults(formatter).get(key)
    if function is not None:
        formatter.deferred_printers[key] = function


# Attributes a cell set on a library's class: ``pd.Series.total = f``, a pandas accessor
# (``@pd.api.extensions.register_series_accessor('phys')``). One process has one class, so the
# other side's class takes them too. Which attributes are watched is told by the notebook (its
# cells' code names them: :func:`watch_class_attributes`); one set here is watched from then on.

#: The watched attributes: (module, class's qualified name, attribute) → the class.
_class_attributes: dict[tuple[str, str, str], type] = {}


def _library_class(module_name: str, qualname: str) -> Any:
    """The class ``qualname`` of module ``module_name`` when that module is imported here; the
    module itself for an empty ``qualname`` (``np.myconst = 5``)."""
    found: Any = sys.modules.get(module_name)
    if not qualname:
        return found
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found if isinstance(found, type) else None


def watch_class_attributes(attributes: Any) -> None:
    """Watch these ``(module, class's qualified name, attribute)`` from now on, for the
    classes imported here (a cell sets them: :attr:`..cells.capture.CellNames.class_attributes`)."""
    for entry in attributes if isinstance(attributes, (list, tuple)) else ():
        if isinstance(entry, (list, tuple)) and len(entry) == 3 \
                and all(isinstance(part, str) for part in entry):
            kind = _library_class(entry[0], entry[1])
            if kind is not None:
                _class_attributes[tuple(entry)] = kind
                _note_original(entry, kind)
            elif entry[0] not in sys.modules:  # the cell imports it: watched from its import
                _unresolved[tuple(entry)] = None  # on (hunt 23 H23-14)


#: Watched attributes of a library not imported here yet, as watch_class_attributes got them.
_unresolved: dict[tuple[str, str, str], None] = {}


def _resolve_watched() -> None:
    for entry in [entry for entry in _unresolved if entry[0] in sys.modules]:
        del _unresolved[entry]
        kind = _library_class(entry[0], entry[1])
        if kind is not None:
            _class_attributes[entry] = kind
            _note_original(entry, kind)


def _note_original(entry: tuple, kind: Any) -> None:
    """A watched attribute of a library's module, as the library has it before a cell (here
    or there) replaces it with a function of its own: what a patch that holds it (``math.sin =
    logged(math.sin)``) means by it (:func:`..wire.serialize.original_of`)."""
    module_name, qualname, attribute = entry
    if not qualname and isinstance(kind, types.ModuleType):
        serialize.note_original(module_name, attribute, vars(kind).get(attribute))


#: Attributes that a library's own setup function sets on a class of its own, which no cell's
#: code names: SymPy's ``init_printing()`` sets how its objects show in a notebook
#: (``Printable._repr_png_``, the rendered formula; ``_repr_latex_``, ``_repr_svg_``). Watched
#: from when the module is imported (hunt 17 C15: the png printer stayed on its side).
_SET_BY_LIBRARIES = {("sympy.printing.defaults", "Printable"):
                     ("_repr_png_", "_repr_svg_", "_repr_latex_")}
_set_by_libraries_seen: set[tuple[str, str]] = set()


def _watch_set_by_libraries() -> None:
    for (module_name, qualname), attributes in _SET_BY_LIBRARIES.items():
        if module_name in sys.modules and (module_name, qualname) not in _set_by_libraries_seen:
            _set_by_libraries_seen.add((module_name, qualname))
            watch_class_attributes([(module_name, qualname, name) for name in attributes])


def _classes_read(module: Any) -> tuple:
    _watch_set_by_libraries()
    if _unresolved:
        _resolve_watched()
    return tuple(vars(kind).get(attribute) for (_, _, attribute), kind
                 in _class_attributes.items())


def _classes_spell(module: Any, state: tuple) -> dict[str, Any] | None:
    if len(state) != len(_class_attributes):  # read before one more was watched
        return None
    return {"class|" + "|".join(entry): value for entry, value in zip(_class_attributes, state)}


def _classes_write(module: Any, name: str, value: Any) -> None:
    module_name, qualname, attribute = name[len("class|"):].split("|")
    kind = _library_class(module_name, qualname)
    if kind is None:
        if module_name not in sys.modules:  # this side has not imported it yet: set as its
            _pending.setdefault(module_name, {})["builtins." + name] = value  # import ends
            _WHEN_IMPORTED.watch()  # (hunt 23 H23-17: a plain cell's `pd.Series.total = f`
        return  # never reached an engine that imported pandas later)
    _class_attributes[(module_name, qualname, attribute)] = kind
    _note_original((module_name, qualname, attribute), kind)
    if value is None:
        if attribute in vars(kind):
            delattr(kind, attribute)
    else:
        setattr(kind, attribute, value)


def _socket_write(module: Any, name: str, value: Any) -> None:
    module.setdefaulttimeout(value)


#: Signals whose handler a cell sets for its own code, which the other side takes too (hunt 23
#: H23-2: a plain cell's SIGALRM handler, a timeout's, was not the engine's, so a remote
#: `signal.alarm(1)` ended the engine): the timers' and the user's. Not SIGINT (the stop
#: button's) nor SIGTERM (how a kernel is stopped).
_CELLS_SIGNALS = tuple(number for number in (getattr(_signal, name, None) for name in (
    "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGUSR1", "SIGUSR2")) if number is not None)


def _signal_read(module: Any) -> tuple:
    return tuple(_signal.getsignal(number) for number in _CELLS_SIGNALS)  # (ints: no enums)


def _signal_spell(module: Any, state: tuple) -> dict[str, Any]:
    """A cell's own handler, or the default or ignoring one; not a library's, which stays with
    its library (as its logging filters do)."""
    return {str(number): handler for number, handler in zip(_CELLS_SIGNALS, state)
            if handler in (0, 1) or _cells_own(handler)}


def _signal_write(module: Any, name: str, value: Any) -> None:
    if threading.current_thread() is threading.main_thread():  # only it may set one
        _signal.signal(int(name), value)


def _sympy_read(module: Any) -> tuple:
    # the module by its name: `sympy.utilities.lambdify` is the function
    lambdify = sys.modules.get("sympy.utilities.lambdify")
    return (tuple(vars(module.core.parameters.global_parameters).items()),
            getattr(lambdify, "_lambdify_generated_counter", None))


def _sympy_spell(module: Any, state: tuple) -> dict[str, Any]:
    """Its global parameters; and the number of the next function ``lambdify`` makes, whose
    source it keeps in :mod:`linecache` as ``<lambdifygenerated-N>``: each side counted on its
    own, so a remote cell's function took the name of one the notebook had, and
    ``inspect.getsource`` of the notebook's showed the other's code (hunt 25 H25-7)."""
    parameters, counter = state
    return {**dict(parameters), **({"lambdify_counter": counter} if counter is not None else {})}


def _sympy_write(module: Any, name: str, value: Any) -> None:
    if name == "lambdify_counter":
        lambdify = importlib.import_module("sympy.utilities.lambdify")
        lambdify._lambdify_generated_counter = max(value, lambdify._lambdify_generated_counter)
        return
    setattr(module.core.parameters.global_parameters, name, value)


#: Each library's settings: how to read its state, to spell a state out (None: it cannot be),
#: and to set one setting by its own name.
LIBRARIES: dict[str, tuple[Callable[[Any], tuple],
                           Callable[[Any, tuple], dict[str, Any] | None],
                           Callable[[Any, str, Any], None]]] = {
    "sys": (_sys_read, _sys_spell, _sys_write),
    "decimal": (_decimal_read, _decimal_spell, _decimal_write),
    "numpy": (_numpy_read, _numpy_spell, _numpy_write),
    "random": (_random_read, _random_spell, _random_write),
    "warnings": (_warnings_read, _warnings_spell, _warnings_write),
    "pandas": (_pandas_read, _pandas_spell, _pandas_write),
    "matplotlib": (_matplotlib_read, _matplotlib_spell, _matplotlib_write),
    "logging": (_logging_read, _logging_spell, _logging_write),
    "os": (_os_read, _os_spell, _os_write),
    "IPython": (_ipython_read, _ipython_spell, _ipython_write),
    "builtins": (_classes_read, _classes_spell, _classes_write),  # a library's classes
    "signal": (_signal_read, _signal_spell, _signal_write),
    "socket": (lambda module: module.getdefaulttimeout(),
               lambda module, state: {"defaulttimeout": state}, _socket_write),
    "locale": (lambda module: module.setlocale(module.LC_ALL),
               lambda module, state: {"LC_ALL": state},
               lambda module, name, value: module.setlocale(module.LC_ALL, value)),
    # the longest field a CSV reader takes (`csv.field_size_limit(sys.maxsize)`, hunt 22 H22-8)
    "csv": (lambda module: module.field_size_limit(),
            lambda module, state: {"field_size_limit": state},
            lambda module, name, value: module.field_size_limit(value)),
    # mpmath's working precision (`mp.dps = 30`: its digits follow its bits) and how it prints
    # its numbers, as the decimal context's (hunt 22 H22-9)
    "mpmath": (lambda module: (module.mp.prec, module.mp.pretty),
               lambda module, state: {"mp.prec": state[0], "mp.pretty": state[1]},
               lambda module, name, value: setattr(module.mp, name[len("mp."):], value)),
    # SymPy's global parameters (`global_parameters.distribute = False`: `2*(x + y)` stays so)
    # and the count lambdify names its functions' source files by
    "sympy": (_sympy_read, _sympy_spell, _sympy_write),
    # the first day of the week `calendar` prints (`calendar.setfirstweekday(calendar.SUNDAY)`)
    "calendar": (lambda module: module.firstweekday(),
                 lambda module, state: {"firstweekday": state},
                 lambda module, name, value: module.setfirstweekday(value)),
    # the opener `urlopen` and `urlretrieve` use (`install_opener`: a User-agent for downloads)
    "urllib": (lambda module: module.request._opener,
               lambda module, state: {"request.opener": state},
               lambda module, name, value: importlib.import_module("urllib.request")
               .install_opener(value)),
    # how `reprlib.repr` shortens (`reprlib.aRepr.maxlist = 2`)
    "reprlib": (lambda module: tuple(vars(module.aRepr).items()),
                lambda module, state: {"aRepr." + name: value for name, value in state},
                lambda module, name, value: setattr(module.aRepr, name[len("aRepr."):], value)),
}


def snapshot() -> dict[str, Any]:
    """This process's settings now (each library's state), for the libraries it has imported."""
    if _pending or _unmarked:
        take_pending()
    found: dict[str, Any] = {}
    for name, (read, _, _) in LIBRARIES.items():
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            found[name] = read(module)
        except Exception:  # a version that keeps them elsewhere: none of its settings cross
            continue
    return found


def _spelled(library: str, state: Any) -> dict[str, Any] | None:
    """A library's state as ``"pandas.display.max_rows"`` → value (None: it cannot be)."""
    try:
        values = LIBRARIES[library][1](sys.modules[library], state)
    except Exception:
        return None
    if values is None:
        return None
    return {library + "." + name: value for name, value in values.items()}


_ABSENT = object()


def differing(now: dict[str, Any], then: dict[str, Any],
              random: bool = True) -> dict[str, Any]:
    """The settings of ``now`` that ``then`` (two :func:`snapshot`s) lacks or holds another
    value for, as key → value (every one, against an empty ``then``); without ``random``, not
    the random generators' state (:data:`RANDOM_KEYS`: a fan-out's members and a proxy's
    operations draw their own)."""
    changed: dict[str, Any] = {}
    for library, state in now.items():
        before = then.get(library, _ABSENT)  # a state may be None (no socket timeout)
        if before is not _ABSENT and _same(before, state):
            continue
        values = _spelled(library, state) or {}
        old = _spelled(library, before) if before is not _ABSENT else None
        changed.update((key, value) for key, value in values.items()
                       if old is None or key not in old or not _same(old[key], value))
    if not random:
        for key in RANDOM_KEYS:
            changed.pop(key, None)
    return changed


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except Exception:  # an array-valued setting: compared by identity only
        return False


def current_objects() -> dict[str, Any]:
    """The settings that are an object a cell may hold by a name and make current, by key:
    the thread's ``decimal`` context (``ctx = Context(prec=2); setcontext(ctx)``, then
    ``ctx.prec = 4`` changes the current one, as the decimal docs do), the list
    ``catch_warnings(record=True)`` records into (``wlog = cw.__enter__()`` left open across
    cells), and the opener ``urlopen`` uses (``install_opener(opener)``). Their values cross
    as the other settings do; which object is current crosses by its name
    (:func:`named_current`)."""
    found = {}
    decimal = sys.modules.get("decimal")
    if decimal is not None:
        found["decimal.context"] = decimal.getcontext()
    recorded = recording_into(warnings)  # `wlog = cw.__enter__()`: the list it records into
    if recorded is not None:
        found["warnings.record"] = recorded
    request = sys.modules.get("urllib.request")  # `install_opener(opener)`, then changing it
    if getattr(request, "_opener", None) is not None:
        found["urllib.opener"] = request._opener
    return found


def current_figure() -> Any:
    """pyplot's current figure in this process, without making one (as ``plt.gcf()`` would):
    the one ``plt.title(...)`` draws on. None when pyplot is not loaded or no figure is open
    (the inline backend closes a cell's figures as it ends, unless ``%config
    InlineBackend.close_figures = False``; ``agg`` keeps them)."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None or "matplotlib.pyplot" not in sys.modules:
        return None
    try:
        manager = helpers.Gcf.get_active()
        return manager.canvas.figure if manager is not None else None
    except Exception:  # noqa: BLE001 - another matplotlib: no figure follows the cell
        return None


def named_current(namespace: Any, names: Any,
                  objects: dict[str, Any] | None = None) -> dict[str, str]:
    """Which of :func:`current_objects` (``objects``, when read already) ``namespace`` binds
    to one of ``names``: key → name."""
    objects = current_objects() if objects is None else objects
    by_id = {id(obj): key for key, obj in objects.items()}
    found: dict[str, str] = {}
    if by_id:
        for name in names:
            key = by_id.get(id(namespace.get(name, _ABSENT)))
            if key is not None and key not in found:
                found[key] = name
    return found


def make_current(named: Any, namespace: Any) -> None:
    """Make current the objects ``named`` (:func:`named_current`'s, from the other side) names
    in ``namespace``: the object is this side's of the other side's current one."""
    if not isinstance(named, dict):
        return

    def held(key: str) -> Any:
        name = named.get(key)
        return namespace.get(name) if isinstance(name, str) else None

    recorded = held("warnings.record")
    if type(recorded) is list:  # this side's warnings go into this side's copy of the list
        warnings._showwarnmsg_impl = recorded.append
        warnings.showwarning = warnings._showwarning_orig
    request = sys.modules.get("urllib.request")
    opener = held("urllib.opener")
    if request is not None and isinstance(opener, request.OpenerDirector):
        request.install_opener(opener)
    decimal = sys.modules.get("decimal")
    context = held("decimal.context")
    if decimal is not None and isinstance(context, decimal.Context):
        decimal.setcontext(context)


#: The notebook's figures this side's pyplot holds as current (:func:`lend_to_pyplot`), each
#: as (figure, its manager here, whether it had its own ``show`` already, its number there).
_lent_figures: list[tuple[Any, Any, bool, Any]] = []


def lend_to_pyplot(figure: Any) -> None:
    """In an engine: ``figure`` (a copy of the notebook's current figure, which came with a run
    or a call) made pyplot's current figure here, as matplotlib makes one it unpickles from a
    pyplot that held it: what pyplot draws goes on it (`plt.title('x')` in a remote cell: hunt
    36 H36-5), and back into the notebook's. Not queued to be shown: a plain cell does not show
    a figure it only changes. Until :func:`return_lent_figures`; anything else, left."""
    kind = type(figure)
    if kind.__name__ != "Figure" or kind.__module__ != "matplotlib.figure" \
            or getattr(figure.canvas, "manager", None) is not None:
        return
    had_show, number = "show" in vars(figure), getattr(figure, "_number", None)
    try:
        pyplot = importlib.import_module("matplotlib.pyplot")  # (the figure came: it is there)
        backend = pyplot._get_backend_mod()
        drawing = getattr(getattr(backend, "show", None), "_draw_called", None)
        taken = pyplot.get_fignums()  # its own number where free (`plt.figure(3)` selects it,
        free = number if isinstance(number, int) and number not in taken \
            else max(taken, default=0) + 1  # as plainly: hunt 37 H37-2)
        manager = backend.new_figure_manager_given_figure(free, figure)
        sys.modules["matplotlib._pylab_helpers"].Gcf._set_new_active_manager(manager)
    except Exception:  # noqa: BLE001 - a matplotlib without these: the figure stays an input
        return
    queued = getattr(getattr(backend, "show", None), "_to_draw", None)
    if isinstance(queued, list) and figure in queued:  # (the inline backend queues a new one)
        queued.remove(figure)
        backend.show._draw_called = bool(drawing)
    _lent_figures.append((figure, manager, had_show, number))


def return_lent_figures() -> list:
    """The figures :func:`lend_to_pyplot` lent leave this side's pyplot, unshown and open
    (before its backend shows and closes what a run drew: the notebook's own stays open there,
    unless the cell showed it, ``plt.show()``), with their numbers as the other side's. Returns
    those the code closed meanwhile (``plt.close(fig)``), which the notebook closes too (hunt
    37 H37-1)."""
    closed = []
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    while _lent_figures:
        figure, manager, had_show, number = _lent_figures.pop()
        if helpers is not None and helpers.Gcf.figs.get(manager.num) is manager:
            del helpers.Gcf.figs[manager.num]
        else:
            closed.append(figure)
        figure.canvas.manager = None
        if not had_show:
            vars(figure).pop("show", None)
        if number is not None:
            figure._number = number
    return closed


def take(values: dict[str, Any]) -> None:
    """Set ``values`` (key → value) here, those of a library not imported yet once it is; a
    value this side's version refuses is left as it is."""
    current: dict[str, Any] = {}
    for library, state in snapshot().items():
        current.update(_spelled(library, state) or {})
    for key, value in values.items():
        library = key.split(".", 1)[0]
        if library not in LIBRARIES:
            continue
        if library not in sys.modules:
            _pending.setdefault(library, {})[key] = value
            _WHEN_IMPORTED.watch()
        elif key not in current or not _same(current[key], value):
            _set(key, value)
            # its library's other settings as they are now: the warnings filters set, Python
            # forgot which warnings it showed, and the other side's record of them is news
            current.update(_spelled(library, LIBRARIES[library][0](sys.modules[library])) or {})


def take_pending() -> None:
    """Set the settings kept for libraries that have been imported since."""
    if _unmarked:
        _mark_shown([entry for entry in _unmarked if entry[0] in sys.modules])
    for library in [library for library in _pending if library in sys.modules]:
        for key, value in _pending.pop(library).items():
            _set(key, value)
    if not _pending:
        _WHEN_IMPORTED.unwatch()


class _WhenImported:
    """A finder first on ``sys.meta_path`` while settings wait for a library (:data:`_pending`):
    the import of one of them ends by setting them, before any code uses the library, as in
    one process where the other side's cell set them. A remote cell that imports pandas and
    prints a frame prints it with the notebook's options; the notebook that a remote cell's
    ``import pandas as pd; pd.set_option(...)`` reaches (unpickling ``pd`` imports it here) has
    them from then on, and a plain cell that changes one since keeps its change (hunt 21 H21-2:
    they were set at the next run, over it). It finds nothing itself: the library's own loader
    runs it, followed by :func:`take_pending`."""

    def watch(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def unwatch(self) -> None:
        while self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _pending:
            return None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        run = getattr(loader, "exec_module", None)
        if run is None or isinstance(loader, type):  # a built-in one: left as it is
            return spec

        def run_then_set(module: Any) -> None:
            del loader.exec_module  # this loader's own again, whatever happens
            run(module)
            take_pending()

        loader.exec_module = run_then_set  # this loader object only, so it stays itself
        return spec


_WHEN_IMPORTED = _WhenImported()


def _set(key: str, value: Any) -> None:
    library, name = key.split(".", 1)
    try:
        with unshown_warnings():  # as set by a cell there: it warned there already
            LIBRARIES[library][2](sys.modules[library], name, value)
    except Exception:  # another version of the library: this one is left as it is
        pass


@contextlib.contextmanager
def unshown_warnings() -> Iterator[None]:
    """Warnings raised within are not shown. Not ``catch_warnings``: changing the filters
    makes Python forget which warnings it showed already, so a warning shown once per place
    (IPython's "To exit: use 'exit'" at ``sys.exit()``) would show again after each."""
    shown, warnings.showwarning = warnings.showwarning, _not_shown
    try:
        yield
    finally:
        if warnings.showwarning is _not_shown:  # not set within: a cell's `warnings.showwarning
            warnings.showwarning = shown  # = f`, which the other side took, stays (H23-14)


def _not_shown(*_args: Any, **_kwargs: Any) -> None:
    return None


def encode(values: dict[str, Any]) -> str:
    """``values`` as text for a message's content (pickled, one by one: a setting may be a
    function, or of a class the other side lacks, which then loses that one only). An
    exception (``sys.last_value``) is pickled by our pickler, which keeps what Python's own
    pickling of one loses: its ``__init__`` is not run again with its final ``args`` (hunt 21
    H21-8: ``CodeError(7)`` whose ``__init__`` says ``f'code {code}'`` became ``'code code
    7'``), nor its cause. So is a patch a cell put in a library's module with
    ``functools.wraps`` (:func:`..wire.serialize.a_cells_patch`), which cloudpickle refers to by
    the name it took."""
    each = {}
    for key, value in values.items():
        try:
            if isinstance(value, BaseException) or serialize.a_cells_patch(value):
                each[key] = _our_pickle(value)
            else:
                try:
                    each[key] = cloudpickle.dumps(value)
                except Exception:
                    if not serialize.a_cells_function(value):
                        raise
                    # a cells' patch holding the library object it replaced, which pickle
                    # refuses by its name (`math.sin = logged(math.sin)`, hunt 43 H43-2b): ours
                    # sends it as the receiver's original
                    each[key] = _our_pickle(value)
        except Exception:  # a setting that cannot travel (a formatter holding a lock): it stays
            continue
    return base64.b64encode(pickle.dumps(each)).decode("ascii")


def _our_pickle(value: Any) -> bytes:
    """``value`` pickled by our pickler (:class:`..wire.serialize.Pickler`)."""
    made = io.BytesIO()
    serialize.Pickler(made, protocol=serialize.PROTOCOL).dump(value)
    return made.getvalue()


def decode(text: Any) -> dict[str, Any]:
    """What :func:`encode` made, less any value that cannot be read here."""
    try:
        each = pickle.loads(base64.b64decode(text))
    except Exception:
        return {}
    values = {}
    for key, data in each.items() if isinstance(each, dict) else ():
        try:
            values[key] = pickle.loads(data)
        except Exception:  # another version, or a library this side lacks: that one stays
            continue
    return values


__all__ = ["LIBRARIES", "RANDOM_KEYS", "snapshot", "differing", "take", "take_pending", "encode",
           "decode", "watch_class_attributes", "Forwarding", "take_log_record",
           "watch_shown_warnings"]
