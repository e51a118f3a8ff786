"""Atoms: small values that never change and hash by their value (a number, a short string, a
date, a tuple of such), which come back as values under the ``none`` policy too, since a proxy
cannot stand in for them (:meth:`.core.Engine.encode`, :func:`.live.items`)."""
from __future__ import annotations

import enum
import sys
from typing import Any

#: The largest string or bytes :func:`atom` takes, and the most a tuple or frozenset of them
#: may hold in all (its members' sizes, a few bytes each for a number).
ATOM_SIZE = 4096
#: How deep tuples and frozensets nest in one :func:`atom` (``((1, 2), (3, 4))``).
ATOM_DEPTH = 4
#: Classes (by module and name) of small values that never change and hash by their value: an
#: atom as a number is (hunt 17 C10).
_IMMUTABLE_VALUES = {"datetime": ("date", "datetime", "time", "timedelta", "timezone"),
                     "fractions": ("Fraction",), "decimal": ("Decimal",),
                     "pandas": ("Timestamp", "Timedelta", "Period"),
                     # a folder a notebook keeps its data in (`DATA = Path('data')`), which
                     # `open(DATA / 'f')` in a plain cell needs as a path (hunt 26 H26-20)
                     "pathlib": ("PosixPath", "PurePosixPath", "PureWindowsPath"),
                     # and what `tzinfo=tz`, a dict keyed by UUIDs, and pandas' missing-value
                     # singletons (`x is pd.NA`) need as themselves (hunt 26 H26-20, H26-36)
                     "uuid": ("UUID",), "zoneinfo": ("ZoneInfo",),
                     "pandas.api.typing": ("NAType", "NaTType"),  # (their home before pandas 2.1:)
                     "pandas._libs.missing": ("NAType",),
                     "pandas._libs.tslibs.nattype": ("NaTType",)}


#: The atoms whose identity code tests (a sentinel tuple): the notebook's copy of one a
#: ``none`` cell made goes back as a reference to the engine's (:mod:`..cells.twins`).
TWINNED = (tuple, frozenset)


def atom(obj: Any) -> bool:
    """Whether ``obj`` is a small value that never changes and hashes by its value: a number, a
    short string or bytes, a date, time or timedelta (pandas' too), a ``Fraction``, a
    ``Decimal``, a ``pathlib`` path or a numpy dtype, or a tuple (a named one too, or a record like
    ``sys.version_info``) or frozenset of such (or of
    None, True, False) of at most :data:`ATOM_SIZE` in all: it comes back as a value under
    ``none`` too. A proxy of one
    compares equal to it (a remote ``==``) but cannot hash as it does (a string's hash is per
    process), so plain code using it as a dict key or in a set went silently wrong (``k in d``
    False for a key just put in; one group per item; ``table[(1, 2)]`` a KeyError), nor be
    formatted, added or tested for its type as it is. A tuple holding a list is no atom: it
    can change."""
    return _atom_size(obj, 0) is not None


def _atom_size(obj: Any, depth: int) -> int | None:
    """About the bytes ``obj`` takes as an :func:`atom`; None if it is none."""
    kind = type(obj)
    if kind is int:
        return obj.bit_length() // 8 + 1 if obj.bit_length() <= 8 * ATOM_SIZE else None
    if kind is float or kind is complex:
        return 8
    if kind is str or kind is bytes:
        return len(obj) + 1 if len(obj) <= ATOM_SIZE else None
    if kind is tuple or kind is frozenset or _named_tuple(kind) or _struct_sequence(kind):
        if depth >= ATOM_DEPTH or len(obj) > ATOM_SIZE:
            return None
        total = 1
        for member in obj:
            size = 1 if member is None or member is True or member is False \
                else _atom_size(member, depth + 1)
            if size is None:
                return None
            total += size
            if total > ATOM_SIZE:
                return None
        return total
    if kind is range:
        return 16
    if kind is slice:  # `data[window]` in a plain cell: of atoms only (`slice(0, big_list)`)
        parts = [_atom_size(part, depth + 1) if part is not None else 1
                 for part in (obj.start, obj.stop, obj.step)] if depth < ATOM_DEPTH else [None]
        return None if None in parts else 1 + sum(parts)
    if isinstance(obj, enum.Enum) and kind.__module__ != "__main__" \
            and getattr(sys.modules.get(kind.__module__), kind.__qualname__, None) is kind:
        return 16  # a library's member (`HTTPStatus.OK`, `re.IGNORECASE`): one object each side
    if kind.__name__ in _IMMUTABLE_VALUES.get(kind.__module__, ()):  # the class, no subclass
        found = getattr(sys.modules.get(kind.__module__), kind.__name__, None) is kind
        return 16 if found else None
    numpy = sys.modules.get("numpy")  # a numpy number, boolean, date or short string
    if numpy is not None and isinstance(obj, numpy.generic) and obj.dtype.kind in "biufcmMSU" \
            and obj.nbytes <= ATOM_SIZE:
        return obj.nbytes
    if numpy is not None and isinstance(obj, numpy.dtype) and not obj.hasobject:
        return 16  # `df['g'].dtype`: patsy and numpy refused a proxy of one (hunt 18 C5)
    return None


def _named_tuple(kind: type) -> bool:
    """Whether ``kind`` is a class ``collections.namedtuple`` made (or a ``typing.NamedTuple``):
    a tuple with fields, whose ``_asdict()``, ``_replace()`` and ``_fields`` a proxy could not
    offer (its underscore names are its own: hunt 19 H19-3)."""
    return kind.__bases__ == (tuple,) and isinstance(vars(kind).get("_fields"), tuple) \
        and "__slots__" in vars(kind) and not vars(kind)["__slots__"]


def _struct_sequence(kind: type) -> bool:
    """Whether ``kind`` is one of Python's records written in C (``sys.version_info``'s,
    ``time.struct_time``, ``os.stat_result``): a tuple with named fields, which never changes."""
    return kind.__bases__ == (tuple,) and isinstance(getattr(kind, "n_sequence_fields", None), int)
