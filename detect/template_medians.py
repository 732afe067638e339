"""Element-wise medians of beat-template rings, many rings per numpy call.

A featurizer's template is the element-wise median of its last
``TEMPLATE_BEATS`` admitted windows (detect/beat_features.py). The beat
model's batcher computes the templates of every device's beats of a tick at
once, here: a sorting network on (rings, WINDOW) slabs for rings of eight
windows or more, a sort along the last axis for the others. Each median has
the bits that sorting its ring alone gives (``BeatFeaturizer._template``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from . import buffers

# The networks' size: detect.beat_features.TEMPLATE_BEATS (which checks it is).
TEMPLATE_BEATS = 16
_NEG_ZERO = np.float32(-0.0).view(np.uint32)      # its bits, as a uint32


def _median_network(n: int, *outputs: int) -> tuple[tuple[int, int], ...]:
    """The compare-exchanges of a sorting network for ``n`` = 16 inputs (Green's,
    60 in 10 layers; listed by Knuth, TAOCP 3, 5.3.4) that the given outputs depend
    on: 54 for the two middle ones. Checked on all 2^16 0-1 inputs in the tests."""
    assert n == 16
    layers = (((0, 13), (1, 12), (2, 15), (3, 14), (4, 8), (5, 6), (7, 11), (9, 10)),
              ((0, 5), (1, 7), (2, 9), (3, 4), (6, 13), (8, 14), (10, 15), (11, 12)),
              ((0, 1), (2, 3), (4, 5), (6, 8), (7, 9), (10, 11), (12, 13), (14, 15)),
              ((0, 2), (1, 3), (4, 10), (5, 11), (6, 7), (8, 9), (12, 14), (13, 15)),
              ((1, 2), (3, 12), (4, 6), (5, 7), (8, 10), (9, 11), (13, 14)),
              ((1, 4), (2, 6), (5, 8), (7, 10), (9, 13), (11, 14)),
              ((2, 4), (3, 6), (9, 12), (11, 13)),
              ((3, 5), (6, 8), (7, 9), (10, 12)),
              ((3, 4), (5, 6), (7, 8), (9, 10), (11, 12)),
              ((6, 7), (8, 9)))
    need, kept = set(outputs), []
    for i, j in reversed([c for layer in layers for c in layer]):
        if i in need or j in need:
            kept.append((i, j))
            need |= {i, j}
    return tuple(reversed(kept))


_MIDDLE = (TEMPLATE_BEATS // 2 - 1, TEMPLATE_BEATS // 2)
_NETWORK = _median_network(TEMPLATE_BEATS, *_MIDDLE)
# A ring of an odd fill needs only the lower middle one (see _network_medians).
_NETWORK_LOW = _median_network(TEMPLATE_BEATS, _MIDDLE[0])
# Full rings whose medians one network pass computes: (16, 64, 160) float32 stays
# in the caches (passes of 64 took 5.4 us per ring, of 1,000 7.4, np.sort 10-13).
_PASS = 64
_NETWORK_FROM = 8           # rings of one fill in a round from which the network pays


def _full_medians(rings: list[npt.NDArray[np.float32]],
                  take: Callable[..., np.ndarray] = buffers.fresh) -> npt.NDArray[np.float32]:
    """Element-wise medians of full template rings (each (TEMPLATE_BEATS, WINDOW)).

    The two middle order statistics come out of a sorting network run on all
    rings side by side (np.minimum and np.maximum on (rings, WINDOW) slabs, one
    pair per compare-exchange) instead of sorting 160 rows of 16 per ring: the
    values a sort gives, so the medians are np.median's to the bit (finite
    inputs; which of two zeros of opposite sign lands in the middle is not
    fixed by a sort either)."""
    return _network_medians(rings, take)


def _filling_medians(rings: list[npt.NDArray[np.float32]],
                     take: Callable[..., np.ndarray] = buffers.fresh) -> npt.NDArray[np.float32]:
    """Element-wise medians of rings of one fill ``n`` below TEMPLATE_BEATS, through the
    full rings' network: each ring's n windows padded to TEMPLATE_BEATS with as many
    -inf rows below them as +inf rows above (one more above for odd n), so the
    network's middle order statistics are the ring's own (its middle pair, or for odd
    n its middle one, at the lower middle position). The padding is only notional:
    :func:`_padded_network` knows where the infinities go, so only exchanges of two
    windows are computed. The bits of :func:`_ring_medians` (finite inputs), which a
    pass holding a -0.0 falls back to: only a sort places zeros of both signs as the
    sort does."""
    return _network_medians(rings, take)


def _padded_network(n: int) -> tuple[tuple[tuple[int, int], ...], int, int]:
    """The network's compare-exchanges for rings of ``n`` windows padded with
    infinities (see :func:`_filling_medians`), on the ``n`` windows alone: an
    exchange with an infinity has a known outcome (nothing moves, or the window
    trades places with the infinity), so it is followed as a relabelling, not
    computed. Returns the exchanges left (between window slots; the minimum goes
    to the first) and the slots that end in the two middle positions (the
    upper one unused for odd ``n``)."""
    below = (TEMPLATE_BEATS - n) // 2
    # What each network position holds: a window slot (0..n-1), or -1 / n for -inf / +inf.
    held = [-1] * below + list(range(n)) + [n] * (TEMPLATE_BEATS - below - n)
    kept = []
    for i, j in (_NETWORK_LOW if n % 2 else _NETWORK):
        a, b = held[i], held[j]
        if a == -1 or b == n:
            continue                          # min(-inf, x) stays; so does max(x, +inf)
        if a == n or b == -1:
            held[i], held[j] = b, a           # +inf above x, or -inf below x: they trade
            continue
        kept.append((a, b))                   # two windows: a real compare-exchange
        # (the minimum stays in slot a, now at position i; the maximum in b, at j)
    lo, hi = _MIDDLE
    return tuple(kept), held[lo], held[hi]


# Per fill 1..TEMPLATE_BEATS - 1: 54 exchanges (of 16 padded rows) become at most
# a few dozen, none of them on an infinity.
_PADDED = {n: _padded_network(n) for n in range(1, TEMPLATE_BEATS)}

_BOTH, _MIN, _MAX = 0, 1, 2


def _steps(network: tuple[tuple[int, int], ...], *outputs: int
           ) -> tuple[tuple[int, int, int], ...]:
    """``network``'s exchanges as (i, j, which): which of the two results a later
    exchange or an output reads (_BOTH, _MIN into i, _MAX into j); one ufunc call
    for the others instead of two (14 of the 54 exchanges of the full network)."""
    need, steps = set(outputs), []
    for i, j in reversed(network):
        lo, hi = i in need, j in need
        if lo or hi:
            steps.append((i, j, _BOTH if lo and hi else _MIN if lo else _MAX))
            need |= {i, j}
    return tuple(reversed(steps))


# The exchanges _network_medians runs: full rings of an even and odd fill, and per fill
# below TEMPLATE_BEATS (on window slots), with the slots of the two middle positions.
_FULL_STEPS = _steps(_NETWORK, *_MIDDLE)
_FULL_STEPS_LOW = _steps(_NETWORK_LOW, _MIDDLE[0])
_PADDED_STEPS = {n: (_steps(net, *((lo,) if n % 2 else (lo, hi))), lo, hi)
                 for n, (net, lo, hi) in _PADDED.items()}


def _network_medians(rings: list[npt.NDArray[np.float32]],
                     take: Callable[..., np.ndarray]) -> npt.NDArray[np.float32]:
    n, width = rings[0].shape
    odd = n % 2 == 1
    if n < TEMPLATE_BEATS:
        network, lo, hi = _PADDED_STEPS[n]
    else:
        network, (lo, hi) = (_FULL_STEPS_LOW if odd else _FULL_STEPS), _MIDDLE
    out = np.empty((len(rings), width), np.float32)
    for start in range(0, len(rings), _PASS):
        group = rings[start:start + _PASS]
        part = out[start:start + len(group)]
        stacked = take("beat.rings", (n, len(group), width), np.float32)
        np.stack(group, axis=1, out=stacked)
        if n < TEMPLATE_BEATS and (stacked.view(np.uint32) == _NEG_ZERO).any():
            part[...] = _ring_medians(group, take)
            continue
        s = list(stacked)                                         # (n, m, WINDOW)
        spare = take("beat.spare", s[0].shape, np.float32)
        for i, j, which in network:
            a, b = s[i], s[j]
            if which == _BOTH:
                np.minimum(a, b, out=spare)
                np.maximum(a, b, out=b)
                s[i], spare = spare, a
            elif which == _MIN:
                np.minimum(a, b, out=a)         # (b is read no more)
            else:
                np.maximum(a, b, out=b)         # (a is read no more)
        if odd:
            part[...] = s[lo]
        else:
            np.add(s[lo], s[hi], out=part)
            part /= np.float32(2)
    return out


def _ring_medians(rings: list[npt.NDArray[np.float32]],
                  take: Callable[..., np.ndarray] = buffers.fresh) -> npt.NDArray[np.float32]:
    """Element-wise medians of rings of one fill (each ``(n, WINDOW)``), as
    :meth:`BeatFeaturizer._template` computes them ring by ring: each sample's n
    values go through the same sort (numpy sorts every 1-D slice along the axis
    with one function; here the slices lie contiguous, ``(rings, WINDOW, n)``, so
    none is copied to a buffer first), and the two middle ones are averaged in
    float32. One sort call per pass of rings instead of one per beat."""
    n, width = rings[0].shape
    mid = n // 2
    out = np.empty((len(rings), width), np.float32)
    for start in range(0, len(rings), _PASS):
        group = rings[start:start + _PASS]
        ordered = take("beat.rings", (len(group), width, n), np.float32)
        for j, ring in enumerate(group):
            ordered[j] = ring.T
        ordered.sort(axis=2)
        part = out[start:start + len(group)]
        if n % 2:
            part[...] = ordered[:, :, mid]
        else:
            np.add(ordered[:, :, mid - 1], ordered[:, :, mid], out=part)
            part /= np.float32(2)
    return out


