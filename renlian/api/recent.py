"""Each app's recent calls and errors per endpoint and hour, kept in memory for the console's usage page.

The request observer (observe.py) already sees every answer with its app, endpoint and error code;
it tallies them here by hour, for the last HOURS hours. Nothing is written anywhere per request: the
tallies are this process's own, from its start, and go with it (the stored daily counts, which every
node adds to, are the long view). The observer writes on the event loop and the console reads there
too, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

HOURS = 48
SUCCESS = "0"


@dataclass(frozen=True)
class HourTally:
    hour: int  # hours since the epoch, UTC
    endpoint: str
    codes: dict[str, int]  # error code (SUCCESS for success) -> answers

    @property
    def calls(self) -> int:
        return sum(self.codes.values())

    @property
    def errors(self) -> int:
        return self.calls - self.codes.get(SUCCESS, 0)


class RecentCalls:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.started = clock()
        # hour -> (app_id, endpoint) -> error code -> answers
        self._hours: dict[int, dict[tuple[str, str], dict[str, int]]] = {}

    def _hour(self) -> int:
        return int(self._clock() // 3600)

    def record(self, app_id: str, endpoint: str, code: str) -> None:
        hour = self._hour()
        tallies = self._hours.get(hour)
        if tallies is None:
            # A new hour: the one that fell out of the window goes, so memory stays HOURS hours.
            for old in [kept for kept in self._hours if kept <= hour - HOURS]:
                del self._hours[old]
            tallies = self._hours[hour] = {}
        codes = tallies.setdefault((app_id, endpoint), {})
        codes[code] = codes.get(code, 0) + 1

    def of_app(self, app_id: str, hours: int) -> list[HourTally]:
        """The app's tallies of the last `hours` hours (this one included), oldest first."""
        first = self._hour() - min(hours, HOURS) + 1
        return [
            HourTally(hour, endpoint, dict(codes))
            for hour, tallies in sorted(self._hours.items())
            if hour >= first
            for (app, endpoint), codes in sorted(tallies.items())
            if app == app_id
        ]
