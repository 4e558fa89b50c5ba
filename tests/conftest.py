"""Shared test helpers: the repository root and a way to write experiment files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ASRSWEEP_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def write_experiment(tmp_path):
    """Write YAML text to tmp_path/<name>.yaml and return its path."""

    def _write(text: str, name: str = "exp") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return _write


@pytest.fixture
def in_repo(monkeypatch):
    """Run the test with the repository root as the working directory."""
    monkeypatch.chdir(ROOT)
    return ROOT
