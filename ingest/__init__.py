"""MQTT in: topics, payload decoding and per-device stream reassembly."""
