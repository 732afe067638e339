"""Reading PhysioNet records and their reference beats for evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .matching import BEAT_SYMBOLS


def data_dir() -> Path:
    """$ECGWATCH_DATA, else ``../shared/data`` beside the repository."""
    env = os.environ.get("ECGWATCH_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def list_records(folder: Path) -> list[str]:
    """Record names with a header and a signal file (``102-0`` style extras skipped)."""
    return sorted(p.stem for p in Path(folder).glob("*.hea")
                  if (p.with_suffix(".dat").exists() or p.with_suffix(".mat").exists()))


def read_signal(path: Path | str, channel: int = 0) -> tuple[npt.NDArray[np.float64], float]:
    """One channel in millivolts and its sampling rate."""
    import wfdb
    rec = wfdb.rdrecord(str(path), channels=[channel])
    x = np.asarray(rec.p_signal[:, 0], dtype=np.float64)
    # Some records mark missing samples as NaN: hold the last good value.
    if not np.isfinite(x).all():
        bad = ~np.isfinite(x)
        idx = np.where(bad, 0, np.arange(x.size))
        np.maximum.accumulate(idx, out=idx)
        x = x[idx]
        x[~np.isfinite(x)] = 0.0
    return x, float(rec.fs)


def beat_reference(path: Path | str, extension: str = "atr") -> npt.NDArray[np.int64]:
    """Sample positions of every beat annotation (PhysioNet beat codes)."""
    import wfdb
    ann = wfdb.rdann(str(path), extension)
    sym = np.asarray(ann.symbol)
    return np.asarray(ann.sample, dtype=np.int64)[np.isin(sym, sorted(BEAT_SYMBOLS))]
