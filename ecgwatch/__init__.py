"""ecgwatch: streaming arrhythmia detection for wearable ECG over MQTT."""

__version__ = "0.1.0"
