"""Waveform primitives of the ECG synthesiser: beat morphology, f-waves, noise.

Beat morphology follows the sum-of-Gaussians model of ECGSYN (McSharry PE,
Clifford GD, Tarassenko L, Smith LA. A dynamical model for generating synthetic
electrocardiogram signals. IEEE Trans Biomed Eng 50(3):289-294, 2003): each
wave (P, Q, R, S, T) is a Gaussian with a centre, a width and an amplitude.
ECGSYN places the Gaussians on a limit cycle and integrates an ODE; here they
are written directly in time around each R peak, which gives the same shapes
but lets the caller put every beat at a scripted R time (the RR series is the
ground truth). As in ECGSYN, the P and T waves move with the heart rate while
the QRS does not: centres and widths scale with RR**exponent, 0.5 for T
(Bazett's QT ~ sqrt(RR)), 0.25 for P, 0 for the QRS.

Atrial f-waves use the sawtooth model with a frequency-modulated fundamental of
Stridh M, Sornmo L. Spatiotemporal QRST cancellation techniques for analysis of
atrial fibrillation. IEEE Trans Biomed Eng 48(1):105-111, 2001.

Noise colours (muscle: broadband above 20 Hz; electrode motion: 1/f below
10 Hz) follow the noise records of the MIT-BIH Noise Stress Test Database
(Moody GB, Muldrow WE, Mark RG. Computers in Cardiology 11:381-384, 1984).

Everything here is a pure function of its arguments; randomness comes in as a
numpy Generator.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Beat kinds (row index into WAVES).
NORMAL, NORMAL_NO_P, PVC, P_ONLY = 0, 1, 2, 3
KIND_LABEL = {NORMAL: "N", NORMAL_NO_P: "N", PVC: "V"}   # AAMI beat symbols

# One row per beat kind, one line per wave:
#   centre (s from R at RR = 1 s), width sigma (s), amplitude (mV), RR exponent.
_P = (-0.200, 0.025, 0.15, 0.25)
_Q = (-0.032, 0.010, -0.10, 0.0)
_R = (0.000, 0.011, 1.10, 0.0)
_S = (0.030, 0.011, -0.28, 0.0)
_T = (0.270, 0.060, 0.28, 0.5)
_T2 = (0.330, 0.035, 0.08, 0.5)      # steeper descending limb: T is asymmetric
_NONE = (0.0, 0.010, 0.0, 0.0)
WAVES = np.array([
    [_P, _Q, _R, _S, _T, _T2],                                  # normal sinus beat
    [_NONE, _Q, _R, _S, _T, _T2],                               # conducted AF beat: no P
    # PVC: no P, a wide (QRS ~140 ms), tall, negative main deflection with a
    # small initial r, and a large T wave of the opposite (positive) polarity.
    [_NONE, (-0.050, 0.018, 0.22, 0.0), (0.000, 0.030, -1.60, 0.0),
     (0.055, 0.022, -0.25, 0.0), (0.300, 0.075, 0.45, 0.5), (0.370, 0.040, 0.10, 0.5)],
    [_P, _NONE, _NONE, _NONE, _NONE, _NONE],                    # P wave not conducted
], dtype=np.float64)

# Support of one beat around its R time. Covers P (at RR = 1.5 s its centre is
# -0.22 s, 4 sigma = 0.11 s) and T (centre 0.33 s + 4 sigma = 0.6 s).
PRE_S, POST_S = 0.40, 0.70
RR_SCALE_RANGE = (0.30, 1.50)   # RR clamp for wave timing (s)


def render_beats(n0: int, n1: int, fs: float, r: FloatArray, kind: IntArray,
                 amp: FloatArray, rr: FloatArray) -> FloatArray:
    """Sum of the beats ``(r, kind, amp, rr)`` over absolute samples ``n0..n1``.

    ``r`` are R times in seconds (sample n is at n / fs), ``amp`` scales the
    whole beat, ``rr`` is the preceding RR interval that sets the P/T timing.
    Vectorised over beats x support samples; no per-sample Python loop.
    """
    n = n1 - n0
    if r.size == 0 or n <= 0:
        return np.zeros(max(n, 0))
    first = np.ceil((r - PRE_S) * fs).astype(np.int64)
    width = int(math.ceil((PRE_S + POST_S) * fs)) + 1
    idx = first[:, None] + np.arange(width)                     # (beats, support)
    t = idx / fs - r[:, None]
    scale = np.clip(rr, *RR_SCALE_RANGE)[:, None] ** WAVES[kind, :, 3]   # (beats, waves)
    centre = WAVES[kind, :, 0] * scale
    sigma = WAVES[kind, :, 1] * scale
    height = WAVES[kind, :, 2] * amp[:, None]
    values = np.zeros(t.shape)
    for w in range(WAVES.shape[1]):
        z = (t - centre[:, w, None]) / sigma[:, w, None]
        values += height[:, w, None] * np.exp(-0.5 * z * z)
    local = idx - n0
    inside = (local >= 0) & (local < n)
    return np.bincount(local[inside], weights=values[inside], minlength=n)


def beat_power(fs: float, hr: float) -> float:
    """Mean-square (mV^2) of an ideal normal sinus rhythm at ``hr`` bpm."""
    rr = 60.0 / hr
    n = int(math.ceil((PRE_S + POST_S) * fs)) + 2
    one = render_beats(0, n, fs, np.array([PRE_S + 1.0 / fs]), np.array([NORMAL]),
                       np.array([1.0]), np.array([rr]))
    return float(np.sum(one * one) / (rr * fs))


def sinusoids(t: FloatArray, components: FloatArray) -> FloatArray:
    """Sum of ``amp * sin(2 pi f t + phase)`` for rows ``(amp, f, phase)``."""
    out = np.zeros(t.shape)
    for a, f, ph in components:
        out += a * np.sin(2.0 * np.pi * f * t + ph)
    return out


def f_waves(t: FloatArray, amplitude: float, f0: float, phases: FloatArray) -> FloatArray:
    """Atrial fibrillatory waves (Stridh and Sornmo 2001).

    The fundamental wanders +-1 Hz around ``f0`` (4..9 Hz) at 0.15 Hz and its
    amplitude by +-30 % at 0.08 Hz; a second harmonic at a third of the
    amplitude gives the sawtooth look. ``phases`` holds four random phases.
    """
    fm, df, fa = 0.15, 1.0, 0.08
    theta = 2 * np.pi * f0 * t + (df / fm) * np.sin(2 * np.pi * fm * t + phases[0]) + phases[1]
    a = amplitude * (1.0 + 0.3 * np.sin(2 * np.pi * fa * t + phases[2]))
    return a * (np.sin(theta) + (1.0 / 3.0) * np.sin(2 * theta + phases[3]))


def coloured_noise(rng: np.random.Generator, n: int, fs: float, band: tuple[float, float],
                   slope: float = 0.0) -> FloatArray:
    """Unit-power Gaussian noise limited to ``band`` Hz with a 1/f**slope amplitude."""
    if n < 4:
        return np.zeros(n)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    lo, hi = band[0], min(band[1], 0.45 * fs)
    gain = ((f >= lo) & (f <= hi)) * (np.maximum(f, lo) / lo) ** (-slope)
    x = np.fft.irfft(spectrum * gain, n)
    rms = math.sqrt(float(np.mean(x * x)))
    return x / rms if rms > 0 else x


def artefact_noise(rng: np.random.Generator, n: int, fs: float, kind: str) -> FloatArray:
    """Unit-power noise burst: ``"muscle"``, ``"motion"`` or ``"mixed"``.

    Muscle (EMG) noise is broadband above 20 Hz and comes in contractions, so
    its envelope swells and fades over about a second; electrode motion is a
    1/f wander below 10 Hz that looks like slurred QRS complexes and drift.
    """
    parts = []
    if kind in ("muscle", "mixed"):
        envelope = 1.0 + 0.6 * coloured_noise(rng, n, fs, (0.05, 1.0))
        parts.append(coloured_noise(rng, n, fs, (20.0, 150.0)) * np.clip(envelope, 0.2, None))
    if kind in ("motion", "mixed"):
        parts.append(coloured_noise(rng, n, fs, (0.3, 10.0), slope=1.0))
    x = np.sum(parts, axis=0) if parts else np.zeros(n)
    # Soft 20 ms edges so a burst does not start with a step.
    ramp = min(n // 2, int(0.02 * fs))
    if ramp > 0:
        w = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        x[:ramp] *= w
        x[n - ramp:] *= w[::-1]
    rms = math.sqrt(float(np.mean(x * x))) if n else 0.0
    return x / rms if rms > 0 else x
