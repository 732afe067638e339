"""Scoring detectors against annotated PhysioNet records (ANSI/AAMI EC57 style)."""
