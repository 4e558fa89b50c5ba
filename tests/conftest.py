"""Shared test helpers: the repository root and a way to write experiment files."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ASRSWEEP_SHARED_DATA", ROOT.parent / "shared" / "data"))


def missing_model(experiment: Path) -> str | None:
    """Why a shipped experiment's pretrained encoder is absent here (a hub id not in the cache), else None.

    Such an example names a real model the user downloads once (config/experiments/examples/finetune.yaml);
    its dry run needs the model, and tests/test_finetune_e2e.py runs a tiny one end to end instead.
    """
    import yaml

    from asrsweep.core.common import UserError
    from asrsweep.core.pretrained import resolve_encoder
    from asrsweep.experiment.nested import undot

    model = undot((yaml.safe_load(experiment.read_text()) or {}).get("controls") or {}).get("model") or {}
    if model.get("encoder") != "hf":
        return None
    try:
        resolve_encoder(str(model.get("pretrained")), "model.pretrained", str(experiment))
    except UserError as err:
        return f"its pretrained model is not here: {err}"
    return None


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
