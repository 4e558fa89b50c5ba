"""Every malformed experiment gets one clear line naming the file and the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from asrsweep.core.common import UserError
from asrsweep.experiment.sweep import load_experiment

MALFORMED = [
    ("variables: {train.lrr: [1, 2]}", "variables.train.lrr: unknown setting 'train.lrr'; did you mean 'train.lr'?"),
    ("variables: {train.lr: []}", "variables.train.lr: empty list of values"),
    ("variables: {train.lr: [0.1, 0.1]}", "variables.train.lr: duplicate value(s) 0.1"),
    ("variables: {train.lr: 0.1}", "variables.train.lr: expected a list of values"),
    ("variables: {model.layers: [two]}", "does not fit 'model.layers'"),
    ("variables: {model.encoder: [lstm]}", "does not fit 'model.encoder'"),
    ("controls: {train.lr: 0.1}\nvariables: {train.lr: [0.2, 0.3]}", "train.lr: is both a control ('train.lr') and varied"),
    ("zip: [{train.lr: [0.1, 0.2], train.warmup_steps: [1]}]", "zip[0]: lists of unequal length"),
    ("zip: [{train.lr: [0.1]}]\nvariables: {train.lr: [0.2]}", "train.lr: varied twice"),
    ("controls: {trian: {lr: 0.1}}", "controls.trian.lr: unknown setting 'trian.lr'"),
    ("controls: {train.compile: 'yes'}", "does not fit 'train.compile'"),
    ("controls: {train.max_steps: 2024-01-01}", "does not fit 'train.max_steps'"),  # a string, never a date
    ("variabels: {train.lr: [0.1]}", "variabels: unknown top-level key; did you mean 'variables'?"),
    ("recipe: nosuch", "recipe: 'nosuch' not found"),
    ("seeds: []", "seeds: expected a non-empty list of integers"),
    ("seeds: [1, 1]", "seeds: duplicate seeds"),
    ("seeds: [1.5]", "seeds: expected a non-empty list of integers"),
    ("presets: {small: {}}", "presets.small: empty preset"),
    ("presets: {'a/b': {model.dim: 8}}", "presets.a/b: preset names may use letters"),
    ("presets: {a: {model.dim: 8}}\nvariables: {model.dim: [16]}", "model.dim: varied twice"),
    ("variables: {data.path: [a_b, a/b, 'a?b']}\n", None),  # distinct ids: must load fine
    ("variables: {train.lr: [0.1]\n", "invalid YAML"),
    ("controls: {train.lr: 1}\ncontrols: {train.lr: 2}\n", "key 'controls' is written twice"),
    ("variables: {train.lr: [-1.0]}", "does not fit 'train.lr'"),
    ("- just\n- a list\n", "expected a mapping"),
]


@pytest.mark.parametrize("text, expected", MALFORMED, ids=[m[0][:40] for m in MALFORMED])
def test_malformed_experiment_names_file_and_key(text, expected, write_experiment, in_repo):
    path = write_experiment(text)
    if expected is None:
        assert len(load_experiment(path).runs) == 3
        return
    with pytest.raises(UserError) as err:
        load_experiment(path)
    message = str(err.value)
    assert expected in message
    assert all(line.startswith(str(path)) for line in message.splitlines())


def test_duplicate_run_ids_are_refused(write_experiment, in_repo):
    path = write_experiment("variables: {data.path: ['a b', 'a b ']}\n")
    # both values sanitise to the same text, so ids are made unique by their hash
    runs = load_experiment(path).runs
    assert runs[0].run_id != runs[1].run_id


def test_cli_prints_one_line_and_no_traceback(write_experiment, in_repo):
    path = write_experiment("variables: {train.lrr: [1]}\n")
    proc = subprocess.run([sys.executable, "-m", "asrsweep.experiment.write_matrix", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "train.lrr" in proc.stderr and str(path) in proc.stderr
