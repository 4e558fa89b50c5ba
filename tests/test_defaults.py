"""The schema is the one source of defaults: every config dataclass default equals the schema's,
and a recipe that leaves keys out is filled from the schema before anything reads it."""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing

import pytest

from asrsweep.experiment.sweep import load_experiment
from asrsweep.experiment.validate import load_schema, schema_defaults

# (section of the recipe, module, dataclass) for every strict config section a step reads.
SECTIONS = [
    ("data", "asrsweep.data.audio", "DataConfig"),
    ("features", "asrsweep.data.compute_features", "FeaturesConfig"),
    ("tokenizer", "asrsweep.data.train_tokenizer", "TokenizerConfig"),
    ("model", "asrsweep.acoustic.model", "ModelConfig"),
    ("train", "asrsweep.acoustic.train", "TrainConfig"),
    ("ngram", "asrsweep.decoding.train_ngram", "NgramConfig"),
    ("decode", "asrsweep.decoding.decoder", "Setting"),
    ("decode.sweep", "asrsweep.decoding.sweep_space", "DecodeSweepSpec"),
    ("nbest", "asrsweep.decoding.decode_frozen", "NbestConfig"),
    ("score", "asrsweep.decoding.scoring", "ScoreConfig"),
    ("lm", "asrsweep.rescoring.train_lm", "LMConfig"),
    ("rescore", "asrsweep.rescoring.rescore", "RescoreConfig"),
    ("stats", "asrsweep.results.stats", "StatsConfig"),
]
DEFAULTS = schema_defaults(load_schema("recipe"))


def section_defaults(dotted: str) -> dict:
    node = DEFAULTS
    for part in dotted.split("."):
        node = node[part]
    return node


def same(a, b) -> bool:
    """Equal as config values: "-inf" == -inf, 3 == 3.0, lists and tuples alike."""
    if isinstance(a, str) and a in ("-inf", "inf"):
        a = float(a)
    if isinstance(b, str) and b in ("-inf", "inf"):
        b = float(b)
    if isinstance(a, float) and isinstance(b, float) and math.isinf(a) and math.isinf(b):
        return a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def mismatches(cls: type, schema: dict, where: str) -> list[str]:
    """'key: dataclass X, schema Y' for each field default that differs from the schema's."""
    hints = typing.get_type_hints(cls)
    problems = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            continue  # no default of its own: nothing to disagree with
        if f.name not in schema:
            problems.append(f"{where}.{f.name}: a dataclass default with no schema key")
            continue
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(hints.get(f.name)):
            problems += mismatches(hints[f.name], schema[f.name], f"{where}.{f.name}")
        elif not same(value, schema[f.name]):
            problems.append(f"{where}.{f.name}: dataclass {value!r}, schema {schema[f.name]!r}")
    return problems


@pytest.mark.parametrize("section,module,name", SECTIONS, ids=[s[0] for s in SECTIONS])
def test_dataclass_defaults_equal_the_schema(section, module, name):
    cls = getattr(importlib.import_module(module), name)
    assert not mismatches(cls, section_defaults(section), section)


def test_every_schema_section_has_its_dataclass():
    assert {s[0].split(".")[0] for s in SECTIONS} == set(DEFAULTS) - {"seed"}


def test_a_recipe_that_leaves_keys_out_is_filled_from_the_schema(tmp_path, in_repo):
    (tmp_path / "short.yaml").write_text("seed: 3\ntrain: {max_steps: 7}\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text("recipe: short.yaml\n")
    [run] = load_experiment(exp).runs
    assert run.config["seed"] == 3 and run.config["train"]["max_steps"] == 7
    assert run.config["model"] == DEFAULTS["model"]
    assert run.config["train"]["batch_frames"] == DEFAULTS["train"]["batch_frames"]
