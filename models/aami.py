"""AAMI EC57 beat classes from MIT-BIH annotation symbols, and the inter-patient split.

The mapping of PhysioNet beat codes onto the five AAMI classes follows
ANSI/AAMI EC57:1998/(R)2008 as applied to the MIT-BIH Arrhythmia Database by
de Chazal, O'Dwyer & Reilly, "Automatic classification of heartbeats using ECG
morphology and heartbeat interval features", IEEE TBME 51(7):1196-1206, 2004
(their Table I):

* N (normal and bundle branch block): N L R e j
* S (supraventricular ectopic):       A a J S
* V (ventricular ectopic):            V E
* F (fusion of ventricular and normal): F
* Q (paced and unclassifiable):       / f Q

Symbols outside this table (``B r n ?`` and the non-beat annotations) are not
scored. The four paced records are excluded, as EC57 recommends, and the
remaining 44 are split into DS1 (training) and DS2 (testing) so that no
patient is in both (de Chazal 2004, Section II-A).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

AAMI_SYMBOLS: dict[str, str] = {
    **{s: "N" for s in "NLRej"},
    **{s: "S" for s in "AaJS"},
    **{s: "V" for s in "VE"},
    "F": "F",
    **{s: "Q" for s in "/fQ"},
}

PACED: tuple[str, ...] = ("102", "104", "107", "217")

DS1: tuple[str, ...] = ("101", "106", "108", "109", "112", "114", "115", "116", "118",
                        "119", "122", "124", "201", "203", "205", "207", "208", "209",
                        "215", "220", "223", "230")
DS2: tuple[str, ...] = ("100", "103", "105", "111", "113", "117", "121", "123", "200",
                        "202", "210", "212", "213", "214", "219", "221", "222", "228",
                        "231", "232", "233", "234")

assert len(DS1) == len(DS2) == 22 and not set(DS1) & set(DS2) and not set(PACED) & set(DS1 + DS2)


def class_index(symbol: str) -> int:
    """Index into :data:`CLASSES` for a beat symbol, or -1 when AAMI does not score it."""
    c = AAMI_SYMBOLS.get(symbol)
    return CLASSES.index(c) if c is not None else -1


def class_indices(symbols: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Vectorised :func:`class_index`."""
    return np.array([class_index(str(s)) for s in np.asarray(symbols).ravel()], dtype=np.int64)
