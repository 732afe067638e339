"""A one-line progress bar for long evaluations, with no dependency.

On a terminal it redraws one line (``\\r``) per finished item; when the
stream is not a TTY (CI logs, pipes) it stays silent until :meth:`finish`,
which always writes one summary line. The clock is injected so the output
is testable without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """``step(label)`` after each finished item; ``finish()`` once at the end."""

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO, *, what: str = "records",
                 clock: Callable[[], float] = time.monotonic, tty: bool | None = None) -> None:
        if total < 0:
            raise ValueError(f"Progress total {total} is negative.")
        self.total = total
        self.done = 0
        self.what = what
        self._stream = stream
        self._clock = clock
        self._t0 = clock()
        isatty = getattr(stream, "isatty", None)
        self._tty = tty if tty is not None else bool(isatty and isatty())

    def step(self, label: str = "") -> None:
        self.done += 1
        if not self._tty:
            return
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.WIDTH))
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        elapsed = self._clock() - self._t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        # Trailing spaces wipe a longer previous label.
        self._stream.write(f"\r[{bar}] {self.done}/{self.total} {label:<10} "
                           f"eta {eta:4.0f} s   ")
        self._stream.flush()

    def finish(self) -> str:
        line = (f"{self.done}/{self.total} {self.what} scored in "
                f"{self._clock() - self._t0:.1f} s")
        # On a terminal, overwrite the bar (padding clears its tail).
        self._stream.write(f"\r{line:<60}\n" if self._tty else line + "\n")
        self._stream.flush()
        return line
