"""The allocator setting (ecgwatch/allocator.py) is safe to call anywhere, any number of times."""

import sys

from ecgwatch.allocator import fix_mmap_threshold


def test_fix_mmap_threshold_reports_whether_glibc_took_it():
    first, again = fix_mmap_threshold(), fix_mmap_threshold()
    assert first is again
    if not sys.platform.startswith("linux"):
        assert first is False
