"""Export the trained :class:`models.net.BeatNet` to one self-contained ONNX file.

TorchScript exporter (``dynamo=False``), opset 17, dynamic batch axis; the
model card's facts travel inside the file as ``metadata_props`` so that the
runtime can check what it loaded.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from detect.beat_features import (
    AMP_BEATS,
    CHANNELS,
    FS,
    RR_FEATURES,
    TEMPLATE_ADMIT,
    TEMPLATE_BEATS,
    WINDOW,
    WINDOW_AFTER,
    WINDOW_BEFORE,
)

from .aami import CLASSES
from .net import BeatNet

MODEL_VERSION = "beat-cnn-7"
OPSET = 17


def metadata(commit: str) -> dict[str, str]:
    return {
        "model_version": MODEL_VERSION,
        "classes": ",".join(CLASSES),
        "input_rate_hz": str(FS),
        "window": f"{WINDOW_BEFORE} before + {WINDOW_AFTER} after R",
        "rr_features": ",".join(RR_FEATURES),
        "training_data": "MIT-BIH Arrhythmia DS1 (de Chazal 2004), 22 records",
        "training_commit": commit,
        "normalisation": (
            "window: 0.5-40 Hz cleaned signal at 250 Hz minus the window median, divided by the "
            f"running median R amplitude of the previous {AMP_BEATS} beats; channel 1 is the "
            f"element-wise median of the previous {TEMPLATE_BEATS} windows of beats that were "
            f"not premature (pre-RR >= {TEMPLATE_ADMIT} x upper RR) "
            "(detect.beat_features.BeatFeaturizer, stack_inputs); rr: seconds and ratios as "
            "emitted by the featurizer, the logarithm is taken inside the graph; decision "
            "biases are folded into the logits, argmax is the decision"),
        "license": "weights: project licence; training data MIT-BIH (PhysioNet, ODC-By 1.0)",
    }


def export_onnx(net: BeatNet, path: Path | str, commit: str) -> None:
    net = net.eval()
    example = (torch.zeros(2, CHANNELS, WINDOW), torch.full((2, len(RR_FEATURES)), 0.8))
    torch.onnx.export(
        net, example, str(path), input_names=["window", "rr"], output_names=["logits"],
        dynamic_axes={"window": {0: "batch"}, "rr": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load(str(path))
    for key, value in metadata(commit).items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    model.producer_name = "ecgwatch.models"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
