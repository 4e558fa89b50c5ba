"""Experiment expansion: merging, axes, ids, stage keys."""

from __future__ import annotations

import gc

import pytest

from asrsweep.experiment.nested import deep_merge, flatten, undot
from asrsweep.experiment.sweep import load_experiment, make_run_id, stage_config
from asrsweep.experiment.workflow import long_lived


def test_deep_merge_merges_mappings_and_replaces_scalars_and_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = deep_merge(base, {"a": {"c": [3]}, "d": {"x": 1}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": {"x": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # inputs untouched


def test_deep_merge_shares_no_mapping_or_list_with_its_inputs():
    base = {"a": {"b": [1, {"x": 1}]}, "c": [1]}
    override = {"c": [[2]], "z": {"y": [3]}}
    merged = deep_merge(base, override)
    merged["a"]["b"][1]["x"] = 9
    merged["c"][0].append(9)
    merged["z"]["y"].append(9)
    assert base == {"a": {"b": [1, {"x": 1}]}, "c": [1]}
    assert override == {"c": [[2]], "z": {"y": [3]}}
    assert list(merged) == ["a", "c", "z"]  # base's order, then the new keys


def test_undot_accepts_dotted_nested_and_mixed_keys():
    assert undot({"train.lr": 1, "train": {"max_steps": 2}, "model.dim": 3}) == {
        "train": {"lr": 1, "max_steps": 2}, "model": {"dim": 3}}
    assert flatten({"a": {"b": 1, "c": {"d": 2}}}) == {"a.b": 1, "a.c.d": 2}


def test_full_product_of_variables_zip_presets_and_seeds(write_experiment, in_repo):
    path = write_experiment("""
        recipe: default
        controls: {train.max_steps: 10}
        variables:
          model.layers: [2, 4]
        zip:
          - {train.lr: [1.0e-3, 3e-3], train.warmup_steps: [10, 30]}
        presets:
          small: {model.dim: 64}
          big: {model.dim: 128}
        seeds: [1, 2]
    """)
    runs = load_experiment(path).runs
    assert len(runs) == 2 * 2 * 2 * 2
    first = runs[0]
    assert first.run_id == "layers=2,lr=0.001,warmup_steps=10,preset=small,seed=1"
    assert first.config["train"]["max_steps"] == 10
    assert first.config["model"]["dim"] == 64 and first.config["seed"] == 1
    assert isinstance(first.config["train"]["lr"], float)  # `3e-3` is a number, not a string
    assert len({r.run_id for r in runs}) == len(runs)


def test_downstream_variable_shares_upstream_stages(write_experiment, in_repo):
    path = write_experiment("""
        variables:
          decode.beam_size: [10, 20]
          ngram.order: [3, 4]
    """)
    runs = load_experiment(path).runs
    assert len({r.keys["train"] for r in runs}) == 1  # a decoder-only variable never retrains
    assert len({r.keys["tokenizer"] for r in runs}) == 1
    assert len({r.keys["ngram"] for r in runs}) == 2
    assert len({r.keys["decode"] for r in runs}) == 4
    assert runs[0].keys["emissions"] == runs[0].keys["train"]


def test_seed_changes_training_but_not_the_tokenizer(write_experiment, in_repo):
    runs = load_experiment(write_experiment("seeds: [1, 2]\n")).runs
    assert runs[0].keys["tokenizer"] == runs[1].keys["tokenizer"]
    assert runs[0].keys["train"] != runs[1].keys["train"]
    assert runs[0].keys["ngram"] == runs[1].keys["ngram"]


def test_stage_config_holds_only_the_sections_of_the_stage(write_experiment, in_repo):
    run = load_experiment(write_experiment("controls: {}\n")).runs[0]
    assert set(stage_config(run.config, "tokenizer")) == {"data", "tokenizer"}
    assert set(stage_config(run.config, "emissions")) == set(stage_config(run.config, "train"))


@pytest.mark.parametrize("values, expected", [
    ({}, "default"),
    ({"train.lr": 3e-4, "model.layers": 4, "seed": 1}, "lr=0.0003,layers=4,seed=1"),
    ({"train.lr": 0.1, "lm.lr": 0.2}, "train.lr=0.1,lm.lr=0.2"),
    ({"train.compile": True}, "compile=true"),
])
def test_run_ids_are_readable(values, expected):
    assert make_run_id(values) == expected


def test_unsafe_or_long_ids_are_sanitised_and_hashed():
    evil = make_run_id({"data.path": "../../etc/passwd; rm -rf /"})
    assert "/" not in evil and ";" not in evil and " " not in evil and not evil.startswith(".")
    assert make_run_id({"data.path": "a/b"}) != make_run_id({"data.path": "a_b"})
    long = make_run_id({f"k{i}": "x" * 20 for i in range(10)})
    assert len(long) <= 80
    assert long == make_run_id({f"k{i}": "x" * 20 for i in range(10)})  # deterministic


def test_raised_step_budget_shares_checkpoints_but_parallel_budgets_do_not(write_experiment, in_repo):
    short = load_experiment(write_experiment("controls: {train.max_steps: 100}\n", "a")).runs[0]
    longer = load_experiment(write_experiment("controls: {train.max_steps: 300}\n", "b")).runs[0]
    assert short.keys["train"] != longer.keys["train"]
    assert short.keys["checkpoints"] == longer.keys["checkpoints"]  # continue, not restart
    both = load_experiment(write_experiment("variables: {train.max_steps: [100, 300]}\n", "c")).runs
    # two trainings of one experiment run at once: never one checkpoint folder for both
    assert both[0].keys["checkpoints"] != both[1].keys["checkpoints"]


def test_long_lived_freezes_what_it_built_and_restores_the_collector():
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            with long_lived():
                assert not gc.isenabled()  # no collector passes while the index is built
                index = [{"run": i} for i in range(1000)]
            assert gc.isenabled() == enabled and gc.get_freeze_count() >= len(index)
            gc.unfreeze()
    finally:
        gc.unfreeze()
        gc.enable()
