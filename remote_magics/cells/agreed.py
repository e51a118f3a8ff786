"""The process settings a target's engine and this notebook agree on (:mod:`..engine.settings`):
what a run or a plain cell's call of a function that stayed remote sends, and what it takes
back."""
from __future__ import annotations

import weakref
from typing import Any

from ..engine import settings


class SettingsAgreed:
    """The process settings (:mod:`..engine.settings`) a target's engine was last seen to have:
    a run sends those that changed here since, and takes those its cell changed there."""

    def __init__(self, engine: str) -> None:
        settings.watch_shown_warnings()  # also without the extension (the Python API)
        self.engine = engine  # its id: a restarted engine has its own settings again
        self.state: dict[str, Any] = {}  # this side's settings when they last agreed
        self.own_random = False  # a fan-out left the engine drawing its own random numbers
        self.called: set[str] = set()  # the settings calls sent since (see send_with_call)

    def send(self, shares_random: bool = True) -> str | None:
        """The settings to send with a run (encoded), None if they agree; they agree after.
        Without ``shares_random`` (a fan-out), the random generators' state stays behind."""
        now = settings.snapshot()
        changed = settings.differing(now, self.state, random=shares_random)
        changed.update(self._called_now(now))
        self.called = set()
        if not shares_random:
            self.own_random = True
        elif self.own_random:  # the engine drew its own numbers since: ours go again
            changed.update((key, value) for key, value in settings.differing(now, {}).items()
                           if key in settings.RANDOM_KEYS)
            self.own_random = False
        self.state = now
        return settings.encode(changed) if changed else None

    def take(self, encoded: Any) -> dict[str, Any]:
        """Take the settings a run changed at the engine; they are returned."""
        values = settings.decode(encoded)
        settings.take(values)
        self.state = settings.snapshot()
        return values

    def send_with_call(self) -> str | None:
        """The settings to send with a plain cell's call of a function that stayed remote
        (encoded; None if none changed): those that changed here since they last agreed, but
        the random generators' state, which a call leaves to the engine (as a proxy's other
        operations do). They do not count as agreed: the next run or call sends them again as
        they are then (setting a value again changes nothing), so a plain cell that restores
        one after the call (`with plt.style.context(...): f()`, `np.seterr(**old)`) restores
        it there too (hunt 39 H39-8)."""
        now = settings.snapshot()
        changed = settings.differing(now, self.state, random=False)
        changed.update(self._called_now(now))
        self.called.update(changed)
        return settings.encode(changed) if changed else None

    def _called_now(self, now: dict[str, Any]) -> dict[str, Any]:
        """The settings calls sent since the last run, as they are in ``now``."""
        if not self.called:
            return {}
        every = settings.differing(now, {}, random=False)
        return {key: every[key] for key in self.called if key in every}

    @staticmethod
    def take_from_call(encoded: Any) -> None:
        """Take the settings a call changed at the engine (not as agreed: see
        :meth:`send_with_call`)."""
        settings.take(settings.decode(encoded))


_agreed: "weakref.WeakKeyDictionary[Any, SettingsAgreed]" = weakref.WeakKeyDictionary()


def settings_agreed(target: Any) -> SettingsAgreed:
    """What ``target``'s engine has of this process's settings (all of them, to a new engine)."""
    agreed = _agreed.get(target)
    engine = getattr(target, "engine_id", "")
    if agreed is None or agreed.engine != engine:  # a restarted engine has its own defaults
        agreed = _agreed[target] = SettingsAgreed(engine)
    return agreed
