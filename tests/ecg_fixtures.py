"""Small deterministic ECG-like signals for unit tests of the signal stages."""

from __future__ import annotations

from pathlib import Path
import os

import numpy as np


def data_dir() -> Path:
    """The PhysioNet data folder: $ECGWATCH_DATA, else ../shared/data from the repo."""
    env = os.environ.get("ECGWATCH_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def beat_train(r_times: np.ndarray, fs: float, duration: float, *, amp: float = 1.0,
               width: float = 0.02, noise: float = 0.01, seed: int = 0) -> np.ndarray:
    """Gaussian QRS (+ a smaller T wave 250 ms later) at ``r_times``, plus white noise."""
    t = np.arange(int(round(duration * fs))) / fs
    x = np.zeros_like(t)
    for r in r_times:
        sl = slice(max(0, int((r - 0.2) * fs)), int((r + 0.5) * fs))
        tt = t[sl]
        x[sl] += amp * np.exp(-0.5 * ((tt - r) / width) ** 2)
        x[sl] += 0.25 * amp * np.exp(-0.5 * ((tt - r - 0.25) / 0.05) ** 2)
    rng = np.random.default_rng(seed)
    return x + noise * rng.standard_normal(t.size)


def regular_r_times(bpm: float, duration: float, start: float = 0.5) -> np.ndarray:
    return np.arange(start, duration - 0.5, 60.0 / bpm)


def draw_beat_indices(draw, seconds: float, fs: float, max_run: int = 25) -> list[int]:
    """For hypothesis strategies: beat sample indices of a random rhythm.

    Runs of normal, fast (133-200 bpm) and slow (30-43 bpm) beats, single
    pauses (2.3-3.5 s) and asystoles (3.8-7 s), so every rate alarm can trip.
    """
    from hypothesis import strategies as st
    ranges = {"normal": (0.6, 1.0), "fast": (0.3, 0.45), "slow": (1.4, 2.0),
              "pause": (2.3, 3.5), "asystole": (3.8, 7.0)}
    t, times = 0.3, []
    while t < seconds:
        times.append(t)
        kind = draw(st.sampled_from(["normal", "normal", "fast", "slow", "pause", "asystole"]))
        lo, hi = ranges[kind]
        for _ in range(draw(st.integers(1, max_run)) if kind in ("fast", "slow", "normal") else 1):
            t += draw(st.floats(lo, hi))
            times.append(t)
    return sorted({round(x * fs) for x in times if x < seconds})


#: Marker for ``samples_doc``: leave this field out of the payload.
DELETE = object()


def samples_doc(**changes) -> dict:
    """A valid counts-mode JSON samples document (25 samples at 250 Hz = 0.1 s)
    with fields changed, or removed where the value is DELETE."""
    d = {"v": 1, "seq": 5, "t0": 100.0, "fs": 250, "lead": "II", "gain": 200,
         "samples": [200] * 25}
    for k, v in changes.items():
        if v is DELETE:
            d.pop(k, None)
        else:
            d[k] = v
    return d
