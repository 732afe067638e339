"""ONNX models shipped with ecgwatch, their model card, and training code."""
