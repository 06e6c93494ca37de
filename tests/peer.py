"""The one way tests reach upstream data in ../shared/peer (absent in a user's clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_DEFAULT = PROJECT_ROOT.parent / "shared" / "peer"


def peer_dir(*parts: str) -> Path:
    """Path under the peer data folder; skips the calling test when the data is absent."""
    root = Path(os.environ.get("POLGEN_PEER_DIR", _DEFAULT))
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"upstream conformance data not found at {path} (set POLGEN_PEER_DIR)")
    return path
