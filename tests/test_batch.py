"""Filters and windowed features batched across devices (detect/batch.py) change
nothing but the speed.

A fleet with the awkward cases (other input rates, two chunks of one device
in one tick, a rate change, a missing and a reordered chunk, a silent
device, a configuration change mid-stream, VF) runs once with every chunk
filtered and analysed on its own and once with one batched pass per tick
(filters, VF window features, quality window statistics); every beat, label,
alarm transition and final state must be the same. The batched window
functions give each window the same bits as that window alone, in any batch.
"""

from __future__ import annotations

import numpy as np
import pytest

from detect import batch
from detect.batch import SignalBatcher
from detect.buffers import Scratch
from detect.classify import BeatBatcher, BeatClassifier
from detect.config import DetectorConfig
from detect.filters import CleaningFilter, SosFilter, bandpass_sos, push_many
from detect.pipeline import DevicePipeline
from detect.quality import DEFAULT_LIMITS, SignalQuality, assess_many, assess_window, verdict
from detect.rpeaks import RPeakDetector, qrs_energy, scan_many
from detect.types import Chunk, Condition
from detect.vf import Screened, VfDetector, vf_features, vf_features_many, vf_tcsc_many
from ecgwatch.evaluation.replay import chunks_of
from ecgwatch.simulate import fleet_scenarios
from ecgwatch.synth import synthesize
from ingest.device import DeviceMonitor, complete_tick

SECONDS = 40
T0 = 1_700_000_000.0


# -- push_many ----------------------------------------------------------------

def test_push_many_is_bit_identical_to_pushing_each_filter_alone():
    rng = np.random.default_rng(1)
    alone = [CleaningFilter(250, (0.5, 40.0), (50.0, 60.0)) for _ in range(5)]
    batched = [CleaningFilter(250, (0.5, 40.0), (50.0, 60.0)) for _ in range(5)]
    # Different histories: filters 0-2 have seen signal, 3-4 start now.
    for a, b in zip(alone[:3], batched[:3]):
        warm = rng.normal(size=300)
        a.push(warm)
        b.push(warm)
    for _ in range(4):
        x = rng.normal(size=(5, 250)) + rng.normal(size=(5, 1)) * 3   # offsets per device
        expected = np.stack([f.push(row) for f, row in zip(alone, x)])
        assert np.array_equal(push_many(batched, x), expected)


def test_push_many_refuses_mixed_designs_and_misshapen_blocks():
    clean = CleaningFilter(250, (0.5, 40.0), (50.0,))
    band = SosFilter(bandpass_sos(250.0, 5.0, 15.0))
    with pytest.raises(ValueError, match="share one design"):
        push_many([clean, band], np.zeros((2, 10)))
    with pytest.raises(ValueError, match="one row per filter"):
        push_many([clean], np.zeros((2, 10)))


def test_filters_of_one_design_share_its_array():
    a = CleaningFilter(250, (0.5, 40.0), (50.0, 60.0))
    b = CleaningFilter(250.0, [0.5, 40.0], [50.0, 60.0])
    assert a.sos is b.sos
    assert CleaningFilter(360, (0.5, 40.0), (50.0, 60.0)).sos is not a.sos


def test_qrs_energy_batched_equals_each_detector_alone_and_any_chunking():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 1000))
    alone = [RPeakDetector(250.0) for _ in range(4)]
    whole = [qrs_energy([d], x[i:i + 1]) for i, d in enumerate(alone)]
    batched = [RPeakDetector(250.0) for _ in range(4)]
    parts = [qrs_energy(batched, x[:, a:b]) for a, b in ((0, 250), (250, 251), (251, 1000))]
    for i in range(4):
        for k in (0, 1):                 # |slope|, integral
            chunked = np.concatenate([p[k][i] for p in parts])
            assert np.array_equal(chunked, whole[i][k][0])
    with pytest.raises(ValueError, match="one rate"):
        qrs_energy([RPeakDetector(250.0), RPeakDetector(500.0)], np.zeros((2, 10)))


def test_scan_many_finds_what_each_detector_finds_alone_under_any_chunking():
    rng = np.random.default_rng(3)
    fs = 250.0
    ecg = [synthesize(sc, fs, 30.0).signal for sc in fleet_scenarios(6, seed=8)]
    ecg[5] = rng.standard_normal(ecg[5].size)          # noise: many candidates
    alone = [RPeakDetector(fs) for _ in ecg]
    batched = [RPeakDetector(fs) for _ in ecg]
    # Different starts: detectors 0-2 have run 3.3 s, 3 only 0.2 s, 4-5 start now.
    for k, warm in ((0, 825), (1, 825), (2, 825), (3, 50)):
        x = rng.standard_normal(warm) * 0.1
        alone[k].push(x)
        batched[k].push(x)
    beats_alone: list[list[int]] = [[] for _ in ecg]
    beats_batched: list[list[int]] = [[] for _ in ecg]
    pos, scanned = 0, 0
    for size in (250, 250, 1, 125, 600, 250, 333, 250, 2000, 250, 17, 250):
        x = np.stack([e[pos:pos + size] for e in ecg])
        pos += size
        for i, d in enumerate(alone):
            beats_alone[i] += d.push(x[i])
        band = push_many([d.band_filter for d in batched], x)
        slope, energy = qrs_energy(batched, band)
        scans = scan_many(batched, band, slope, energy)
        assert [s is not None for s in scans] == [d.steady for d in batched]
        scanned += sum(s is not None for s in scans)
        for i, d in enumerate(batched):
            beats_batched[i] += d.push(x[i], band[i], (slope[i], energy[i]), scans[i])
    assert beats_batched == beats_alone
    assert sum(map(len, beats_alone)) > 100 and scanned > 40
    with pytest.raises(RuntimeError, match="batched R-peak scan"):     # another's scan
        batched[3].push(x[3], band[3], (slope[3], energy[3]), scans[0])
    with pytest.raises(ValueError, match="QRS band and energy"):
        batched[0].push(x[0], scanned=scans[0])


# -- windowed features ---------------------------------------------------------

def _windows(n: int, count: int, seed: int) -> np.ndarray:
    """Cleaned ECG, VF-like waves, noise, silence and a constant, cut into windows."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 250.0
    clean = CleaningFilter(250, (0.5, 40.0), (50.0, 60.0))
    ecg = clean.push(synthesize(fleet_scenarios(1, seed=seed)[0], 250.0, 60.0).signal)
    kinds = [lambda: ecg[(o := int(rng.integers(0, ecg.size - n))):o + n],
             lambda: rng.uniform(0.2, 2) * np.sin(2 * np.pi * rng.uniform(2, 8) * t),
             lambda: rng.standard_normal(n) * 10 ** rng.uniform(-3, 1),
             lambda: np.zeros(n),
             lambda: np.full(n, rng.uniform(-1, 1))]
    return np.stack([kinds[i % len(kinds)]() for i in range(count)])


def _bits(x: object) -> str:
    return repr(x)          # a float's repr round-trips: equal reprs, equal bits


def test_vf_features_of_a_batch_are_each_windows_own_to_the_last_bit():
    x = _windows(1000, 60, seed=4)
    alone = [_bits(vf_features(w, 250.0)) for w in x]
    order = np.random.default_rng(0).permutation(len(x))
    scratch = Scratch()          # the batched pass's working arrays, reused from call to call
    for part in (order, order[:1], order[7:30], order[30:], order):
        assert [_bits(f) for f in vf_features_many(x[part], 250.0)] == [alone[i] for i in part]
        assert ([_bits(f) for f in vf_features_many(x[part], 250.0, scratch)]
                == [alone[i] for i in part])
        windows = x[part]                # the batched pass's way: centred in place
        assert ([_bits(f) for f in vf_features_many(windows, 250.0, scratch, overwrite=True)]
                == [alone[i] for i in part])
    assert vf_features_many(np.zeros((0, 1000)), 250.0) == []


def test_quality_statistics_of_a_batch_are_each_windows_own_to_the_last_bit():
    raw = _windows(500, 50, seed=5)
    clean = _windows(500, 50, seed=6)
    jobs = [(raw[i], clean[i], clean[i - 1] if i % 3 else None) for i in range(len(raw))]
    jobs.append((raw[0][:300], clean[0][:300], clean[1]))      # a tail after a full window
    alone = [_bits(assess_window(r, c, 250.0, DEFAULT_LIMITS, 0.4, p)) for r, c, p in jobs]
    order = np.random.default_rng(1).permutation(len(jobs))
    scratch = Scratch()
    for part in (order, order[:1], order[10:], order):
        for given in (None, scratch):
            stats = assess_many([jobs[i] for i in part], 250.0, DEFAULT_LIMITS, given)
            assert ([_bits(verdict(st, 250.0, DEFAULT_LIMITS, 0.4)) for st in stats]
                    == [alone[i] for i in part])
    reasons = {assess_window(r, c, 250.0, DEFAULT_LIMITS, 0.4, p).reason for r, c, p in jobs}
    assert {"flat", "sqi"} <= reasons


@pytest.mark.parametrize("chunk", [100, 250, 333, 1000, 2600])
def test_features_computed_before_the_push_equal_the_stages_own(chunk):
    rng = np.random.default_rng(chunk)
    x = np.concatenate([_windows(1000, 3, seed=7).ravel(), rng.standard_normal(777)])
    y = x + 0.1 * rng.standard_normal(x.size)
    config = DetectorConfig()
    own = (VfDetector(250.0, start=40), SignalQuality(config, start=40))
    given = (VfDetector(250.0, start=40), SignalQuality(config, start=40))
    out_own: list = []
    out_given: list = []
    for k in range(0, x.size, chunk):
        c, r = x[k:k + chunk], y[k:k + chunk]
        out_own += own[0].push(c) + own[1].push(r, c)
        windows = np.empty((given[0].windows_ending(c.size), given[0].window))
        given[0].fill_windows(c, windows)
        stats = assess_many(given[1].pending(r, c), 250.0, given[1].limits)
        assert len(stats) == given[1].windows_ending(c.size)
        out_given += (given[0].push(c, vf_features_many(windows, 250.0))
                      + given[1].push(r, c, stats))
    assert [_bits(e) for e in out_given] == [_bits(e) for e in out_own]
    assert any(e.active for e in out_own if hasattr(e, "active"))   # VF was seen
    with pytest.raises(ValueError, match="windows"):
        given[0].push(x[:1000], [])
    with pytest.raises(ValueError, match="windows"):
        given[1].push(y[:1000], x[:1000], [])


@pytest.mark.parametrize("chunk", [250, 1000, 2600])
def test_windows_screened_out_by_their_tcsc_give_the_same_vf_events(chunk):
    # The batched pass gives a window only its TCSC while that rules VF out and no
    # episode is open (detect.batch._vf_windows); the events must be the full ones.
    x = np.concatenate([_windows(1000, 9, seed=11).ravel(), _windows(1000, 4, seed=12).ravel()])
    own, given = VfDetector(250.0, start=40), VfDetector(250.0, start=40)
    out_own: list = []
    out_given: list = []
    screened = 0
    for k in range(0, x.size, chunk):
        c = x[k:k + chunk]
        windows = np.empty((given.windows_ending(c.size), given.window))
        given.fill_windows(c, windows)
        full = vf_features_many(windows, 250.0)
        tcsc = vf_tcsc_many(windows, 250.0, Scratch())
        assert [_bits(t) for t in tcsc] == [_bits(f.tcsc) for f in full]
        feats: list = []
        for t, f in zip(tcsc, full):
            keep = bool(feats and not isinstance(feats[-1], Screened)) or not given.screens_out(t)
            feats.append(f if keep else Screened(t))
            screened += not keep
        out_own += own.push(c)
        out_given += given.push(c, feats)
    assert [_bits(e) for e in out_given] == [_bits(e) for e in out_own]
    assert any(e.active for e in out_own) and any(not e.active for e in out_own) and screened
    with pytest.raises(RuntimeError):
        VfDetector(250.0)._decide(Screened(90.0), 1000)       # would have been VF-like


# -- the batcher's contract ----------------------------------------------------

def test_a_second_block_before_the_first_is_filtered_is_refused():
    signals = SignalBatcher()
    p = DevicePipeline("dev-1", signals=signals)
    x = np.zeros(250)
    p.push(Chunk("dev-1", 0, T0, 250.0, x))
    with pytest.raises(RuntimeError, match="dev-1"):
        signals.submit(p, p._seg, x)
    assert signals.pending == 1


def test_a_block_resumed_in_the_wrong_pipeline_is_refused():
    signals = SignalBatcher()
    a = DevicePipeline("dev-a", signals=signals)
    b = DevicePipeline("dev-b", signals=signals)
    a.push(Chunk("dev-a", 0, T0, 250.0, np.zeros(250)))
    b.push(Chunk("dev-b", 0, T0, 250.0, np.zeros(250)))
    block_a, _ = signals.run()
    with pytest.raises(RuntimeError, match="dev-a"):
        b.resume(block_a)


# -- a fleet, batched and not ----------------------------------------------------

def _fleet_chunks() -> dict[str, list[tuple[float, Chunk]]]:
    """(arrival wall time, chunk) per device, with the awkward cases."""
    out: dict[str, list[tuple[float, Chunk]]] = {}
    scenarios = fleet_scenarios(12, seed=3, prefix="bat")
    for i, s in enumerate(scenarios):
        dev = s.name
        if i == 1:                                   # 360 Hz, two 0.5 s chunks per tick
            fs, dur = 360.0, 0.5
        elif i == 2:                                 # 500 Hz, 2 s chunks
            fs, dur = 500.0, 2.0
        else:
            fs, dur = 250.0, 1.0
        x = synthesize(s, fs, float(SECONDS)).signal
        chunks = chunks_of(x, fs, dur, dev, t0=T0)
        if i == 3:                                   # the device switches to 250 Hz at 20 s
            y = synthesize(s, 250.0, float(SECONDS)).signal
            late = chunks_of(y[20 * 250:], 250.0, 1.0, dev, t0=T0 + 20)
            chunks = [c for c in chunks if c.t0 < T0 + 20] + [
                Chunk(dev, c.seq + 20, c.t0, c.fs, c.samples) for c in late]
        arrivals = [(c.t0 - T0 + dur, c) for c in chunks]
        if i == 4:                                   # seq 10 lost, 15 and 16 swapped
            arrivals = [a for a in arrivals if a[1].seq != 10]
            k = next(j for j, a in enumerate(arrivals) if a[1].seq == 15)
            (t1, c1), (t2, c2) = arrivals[k], arrivals[k + 1]
            arrivals[k], arrivals[k + 1] = (t1, c2), (t2, c1)
        if i == 5:                                   # silent from 15 s to 28 s
            arrivals = [a for a in arrivals if not 15 <= a[0] < 28]
        if i == 7:                                   # VF-like waves from 12 s to 26 s
            t = np.arange(int(14 * fs)) / fs
            x = x.copy()
            x[int(12 * fs):int(26 * fs)] = 0.8 * np.sin(2 * np.pi * (4.5 + 0.3 * np.sin(t)) * t)
            arrivals = [(c.t0 - T0 + dur, c) for c in chunks_of(x, fs, dur, dev, t0=T0)]
        out[dev] = arrivals
    return out


def _run(fleet: dict[str, list[tuple[float, Chunk]]], batched: bool):
    model = BeatBatcher(BeatClassifier())
    signals = SignalBatcher() if batched else None
    base = DetectorConfig()
    monitors = {d: DeviceMonitor(d, base, pipeline_factory=(
        lambda dev, c: DevicePipeline(dev, c, model, signals))) for d in fleet}
    seen: dict[str, list] = {d: [] for d in fleet}

    def take(d, r):
        seen[d] += [("beat", b.index) for b in r.beats]
        seen[d] += [("label", b.index, b.label) for b in r.classified]
        seen[d] += [("alarm", t.id, t.action.value, t.condition.value) for t in r.transitions]

    reconfigured = sorted(fleet)[6]
    for tick in range(1, SECONDS + 3):
        now = float(tick)
        for d, arrivals in fleet.items():
            for at, chunk in arrivals:
                if tick - 1 < at <= tick:
                    take(d, monitors[d].push(chunk, now))
        if tick == 12:
            limits = {"tachy_bpm": 90, "tachy_clear_bpm": 85}
            take(reconfigured, monitors[reconfigured].reconfigure(
                base.with_device_overrides({"v": 1, "alarms": limits})))
        for d, r in complete_tick(monitors, signals, model, now):
            take(d, r)
    states = {}
    for d, m in monitors.items():
        take(d, m.flush())
        states[d] = m.state().to_dict()
    return seen, states, signals


@pytest.mark.parametrize("rows", [64, 5])
def test_a_fleet_gives_the_same_beats_labels_alarms_and_states_batched_or_not(rows, monkeypatch):
    # rows: how many blocks one batched pass takes (detect.batch.ROWS); 5 splits the fleet.
    monkeypatch.setattr(batch, "ROWS", rows)
    fleet = _fleet_chunks()
    alone, alone_states, _ = _run(fleet, batched=False)
    batched, batched_states, signals = _run(fleet, batched=True)
    # Per kind, in order. (How beats and labels interleave may differ: a label
    # is released once its quality window is known, which a queued block
    # delays to the end of the tick.)
    for d in fleet:
        for kind in ("beat", "label", "alarm"):
            assert ([e for e in batched[d] if e[0] == kind]
                    == [e for e in alone[d] if e[0] == kind]), f"{kind}s of {d} differ"
    assert batched_states == alone_states
    # The comparison means something: beats, labels and alarms were produced ...
    kinds = {e[0] for d in fleet for e in alone[d]}
    assert kinds == {"beat", "label", "alarm"}
    conditions = {e[3] for d in fleet for e in alone[d] if e[0] == "alarm"}
    assert {Condition.VENTRICULAR_FIBRILLATION.value, Condition.NOISE.value} <= conditions
    # ... and most blocks were filtered in the batched passes, one per tick.
    assert signals.runs <= SECONDS + 2
    assert signals.blocks >= 12 * (SECONDS - 8)
