"""The shipped ONNX beat classifier: loads, documented IO and metadata, deterministic,
batch-independent, and the same function as its PyTorch source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from detect.beat_features import CHANNELS, RR_FEATURES, WINDOW

MODELS = Path(__file__).resolve().parents[1] / "models"
ONNX = MODELS / "beat_classifier.onnx"
META_KEYS = {"model_version", "classes", "input_rate_hz", "window", "rr_features",
             "training_data", "training_commit", "normalisation"}


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(ONNX), so, providers=["CPUExecutionProvider"])


def fixed_inputs(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234)
    t = np.arange(WINDOW) - 64
    # A QRS-like spike at the R position plus noise, with varied amplitude and width.
    amp = rng.uniform(0.5, 1.5, (n, 1))
    width = rng.uniform(2.0, 8.0, (n, 1))
    window = amp * np.exp(-0.5 * (t / width) ** 2) + 0.05 * rng.standard_normal((n, WINDOW))
    rr = rng.uniform(0.4, 1.6, (n, len(RR_FEATURES)))
    # Channel 1, the template: a typical beat, which some rows match and some do not.
    template = np.exp(-0.5 * (t / 4.0) ** 2) * np.ones((n, 1))
    return np.stack([window, template], axis=1).astype(np.float32), rr.astype(np.float32)


def test_files_are_small() -> None:
    assert ONNX.stat().st_size < 1_000_000
    assert (MODELS / "beat_classifier.pt").stat().st_size < 1_000_000


def test_metadata_as_documented(session: ort.InferenceSession) -> None:
    meta = session.get_modelmeta().custom_metadata_map
    assert META_KEYS <= set(meta)
    assert meta["classes"] == "N,S,V,F,Q"
    assert meta["input_rate_hz"] == "250"
    assert meta["window"] == "64 before + 96 after R"
    assert meta["rr_features"].split(",") == list(RR_FEATURES)
    assert meta["model_version"].startswith("beat-cnn-")
    assert len(meta["training_commit"]) == 40


def test_io_names_and_shapes(session: ort.InferenceSession) -> None:
    ins = {i.name: i for i in session.get_inputs()}
    assert set(ins) == {"window", "rr"}
    assert ins["window"].shape[1:] == [CHANNELS, WINDOW] and ins["window"].type == "tensor(float)"
    assert ins["rr"].shape[1:] == [len(RR_FEATURES)] and ins["rr"].type == "tensor(float)"
    # The batch axis is symbolic, not a fixed size.
    assert isinstance(ins["window"].shape[0], str) and isinstance(ins["rr"].shape[0], str)
    (out,) = session.get_outputs()
    assert out.name == "logits" and out.shape[1:] == [5]
    window, rr = fixed_inputs(7)
    (logits,) = session.run(None, {"window": window, "rr": rr})
    assert logits.shape == (7, 5) and logits.dtype == np.float32


def test_deterministic(session: ort.InferenceSession) -> None:
    window, rr = fixed_inputs()
    a = session.run(None, {"window": window, "rr": rr})[0]
    b = session.run(None, {"window": window, "rr": rr})[0]
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()


def test_batch_of_one_equals_its_row(session: ort.InferenceSession) -> None:
    window, rr = fixed_inputs(256)
    many = session.run(None, {"window": window, "rr": rr})[0]
    for i in (0, 17, 255):
        one = session.run(None, {"window": window[i:i + 1], "rr": rr[i:i + 1]})[0]
        np.testing.assert_allclose(one[0], many[i], rtol=0, atol=1e-5)
        assert one[0].argmax() == many[i].argmax()


def test_onnx_matches_pytorch(session: ort.InferenceSession) -> None:
    torch = pytest.importorskip("torch")
    from models.net import from_state
    state = torch.load(MODELS / "beat_classifier.pt", map_location="cpu", weights_only=True)
    net = from_state(state)
    window, rr = fixed_inputs()
    with torch.no_grad():
        ref = net(torch.from_numpy(window), torch.from_numpy(rr)).numpy()
    got = session.run(None, {"window": window, "rr": rr})[0]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(got.argmax(1), ref.argmax(1))


# ----------------------------------------------------------- AAMI and the data
def test_aami_mapping_and_split() -> None:
    from models.aami import CLASSES, DS1, DS2, PACED, class_indices
    assert CLASSES == ("N", "S", "V", "F", "Q")
    got = class_indices(list("NLRejAaJSVEF/fQBrn?+~"))
    np.testing.assert_array_equal(got, [0] * 5 + [1] * 4 + [2] * 2 + [3] + [4] * 3 + [-1] * 6)
    assert len(DS1) == len(DS2) == 22
    assert not set(DS1) & set(DS2) and not set(PACED) & (set(DS1) | set(DS2))



@pytest.mark.realdata
def test_record_beats_follow_the_reference_and_the_model_separates_v() -> None:
    from ecgwatch.evaluation.records import data_dir
    mitdb = data_dir() / "mitdb"
    if not (mitdb / "119.hea").exists():
        pytest.skip(f"MIT-BIH record 119 not found under {mitdb}")
    import wfdb

    from models.aami import class_indices
    from models.dataset import record_beats
    beats = record_beats(mitdb / "119")
    ann = wfdb.rdann(str(mitdb / "119"), "atr")
    ref = class_indices(ann.symbol)
    # Every scored beat but possibly the last (its window may run past the end).
    assert len(ref[ref >= 0]) - 1 <= len(beats) <= len(ref[ref >= 0])
    np.testing.assert_array_equal(np.bincount(beats.labels, minlength=5)[[0, 2]],
                                  np.bincount(ref[ref >= 0][:len(beats)], minlength=5)[[0, 2]])
    # The R peak sits at sample 64 of the window: the window's extreme is near it.
    peak = np.abs(beats.windows[:, 0]).argmax(1)
    assert np.median(np.abs(peak - 64)) <= 3
    # 119 is a DS1 (training) record with ~440 PVCs in bigeminy: a sanity check
    # that the dataset path and the shipped graph agree, not an evaluation.
    s = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    pred = s.run(None, {"window": beats.windows, "rr": beats.rr})[0].argmax(1)
    v = beats.labels == 2
    assert (pred[v] == 2).mean() > 0.9 and (pred[~v] == 2).mean() < 0.05


@pytest.mark.realdata
def test_detected_beats_carry_the_matched_reference_class() -> None:
    """The 'detected' training source: the streaming detector's beats of 119, each
    labelled with the class of the reference beat it matches within 150 ms."""
    from ecgwatch.evaluation.records import data_dir
    mitdb = data_dir() / "mitdb"
    if not (mitdb / "119.hea").exists():
        pytest.skip(f"MIT-BIH record 119 not found under {mitdb}")
    import wfdb

    from models.aami import class_indices
    from models.dataset import record_beats
    det = record_beats(mitdb / "119", "detected")
    ref = record_beats(mitdb / "119", "reference")
    ann = wfdb.rdann(str(mitdb / "119"), "atr")
    cls = class_indices(ann.symbol)
    t_ref = np.asarray(ann.sample)[cls >= 0] / ann.fs
    c_ref = cls[cls >= 0]
    # Each detected beat lies within 150 ms of a reference beat of its own class.
    j = np.clip(np.searchsorted(t_ref, det.times), 1, t_ref.size - 1)
    k = np.where(np.abs(t_ref[j] - det.times) < np.abs(t_ref[j - 1] - det.times), j, j - 1)
    assert np.abs(t_ref[k] - det.times).max() <= 0.150
    np.testing.assert_array_equal(det.labels, c_ref[k])
    # 119 is a clean record: the detector finds nearly every beat, none twice.
    assert len(ref) - 5 <= len(det) <= len(ref)
    assert np.unique(k).size == k.size
    # The source is named, not guessed.
    with pytest.raises(ValueError, match="not one of"):
        record_beats(mitdb / "119", "annotated")
