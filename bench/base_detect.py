"""The ``detect/`` package as it was at another commit, importable beside this one.

Shared by the identity checks (``compare_rpeaks.py``, ``compare_windows.py``):
``git archive`` extracts the base commit's ``detect/`` into a temporary folder
as the package ``detect_base``, so both versions run in one process.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def base_package(rev: str, into: Path) -> str:
    """Extract ``detect/`` as it was at ``rev`` into ``into`` as ``detect_base``; its name."""
    tar = subprocess.run(["git", "-C", str(REPO), "archive", rev, "detect"], check=True,
                         capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    (into / "detect").rename(into / "detect_base")
    sys.path.insert(0, str(into))
    return "detect_base"
