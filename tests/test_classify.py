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
