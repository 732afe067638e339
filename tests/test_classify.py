"""Loading the beat model fails early and clearly for bad files."""

import pytest

from detect.classify import BeatClassifier
from detect.errors import ModelError


def test_a_missing_model_file_is_a_clear_start_up_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        BeatClassifier(tmp_path / "nope.onnx")


def test_a_corrupt_model_file_is_a_clear_start_up_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01not really a protobuf")
    with pytest.raises(ModelError, match="cannot be loaded"):
        BeatClassifier(bad)



def test_predictions_in_passes_are_the_bits_of_one_call(monkeypatch):
    # predict runs in passes of PASS beats (the arena keeps one pass's activations).
    # A row's logits may differ in the last bit with its position in a batch (the
    # kernels' blocking), so PASS is a multiple of the blocks: whole-batch bits.
    import numpy as np

    from detect import classify
    from detect.beat_features import CHANNELS, RR_FEATURES, WINDOW
    clf = BeatClassifier()
    rng = np.random.default_rng(3)
    n = 2 * classify.PASS + 37
    w = rng.standard_normal((n, CHANNELS, WINDOW)).astype(np.float32)
    rr = rng.uniform(0.4, 1.6, (n, len(RR_FEATURES))).astype(np.float32)
    passes = clf.predict(w, rr)
    monkeypatch.setattr(classify, "PASS", n)
    whole = clf.predict(w, rr)
    assert passes.labels == whole.labels and len(whole.labels) == n
    assert passes.probabilities.tobytes() == whole.probabilities.tobytes()
