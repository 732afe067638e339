"""Pure, streaming ECG analysis: no network I/O in this package.

Stages are small classes with ``push(chunk) -> events`` and carry their state
across chunks, so that any chunking of a stream gives the same result as one
whole pass.
"""

DETECTOR_VERSION = "ecgwatch-detect/0.1.0"
