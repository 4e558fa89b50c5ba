"""Expand an experiment file into its runs (library; `python -m asrsweep.experiment.write_matrix E.yaml` prints them).

An experiment file names a base recipe and says what varies:

    recipe: default                 # config/recipes/default.yaml, or any path
    controls: {train.lr: 1.0e-3}    # overrides for every run (nested or dotted keys)
    variables: {model.layers: [4, 6]}          # full cartesian product
    zip: [{train.lr: [1e-3, 3e-3], train.warmup_steps: [100, 300]}]  # vary together
    presets: {small: {model.dim: 96}, big: {model.dim: 144}}         # one axis of bundles
    seeds: [1, 2]                   # one more axis (sets the top-level `seed`)

Every row of the product is a run with a readable id built from the values that vary. Each
stage's artifacts are keyed by a hash of the config sections that stage depends on
(`asrsweep.core.stages`), so runs that differ only downstream share upstream jobs.
The workflow, plan, explain and status import `load_experiment`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

from asrsweep.core import pretrained
from asrsweep.core.common import UserError
from asrsweep.experiment.configio import load_yaml, recipe_path
from asrsweep.core.inputs import check_exists, fingerprint
from asrsweep.core.stages import BY_NAME, SECTIONS, STAGES, upstream_closure
from asrsweep.experiment.nested import deep_merge, undot
from asrsweep.experiment.validate import (check_baseline, check_experiment, load_schema, schema_defaults,
                                         validate_resolved)

# Train settings that say how long to train and how often to report, not what the first steps
# compute: runs differing only in these share a checkpoint folder, so raising max_steps of a
# finished run (with --config overwrite=true) continues from its last checkpoint.
CHECKPOINT_NEUTRAL = ("max_steps", "eval_every", "checkpoint_every", "keep_checkpoints", "loader_workers")
# Settings that name a file or folder -> the stage that reads it, and what it must be.
# A list-valued setting names several (`ngram.text[0]`, ...); a new one is one line here.
PATH_SETTINGS = {"data.path": "data", "train.init_from": "train", "ngram.text": "ngram", "lm.text": "lm",
                 "lm.pretrained": "lm", "model.pretrained": "train"}
PATH_KINDS = {"data.path": "corpus (manifest file or folder)",
              "train.init_from": "model.pt, ckpt-*.pt or checkpoint folder of another run",
              "ngram.text": "text file (one sentence a line, plain or .gz)",
              "lm.text": "text file (one sentence a line, plain or .gz)",
              "lm.pretrained": "causal LM folder (config.json, weights, tokenizer) or cached hub id",
              "model.pretrained": "speech encoder folder (config.json, weights) or cached hub id"}
# Settings whose value is found otherwise than as a path (a hub id from the cache): setting -> resolve(value, setting, where).
PATH_RESOLVE = {"lm.pretrained": pretrained.resolve, "model.pretrained": pretrained.resolve_encoder}
# Settings that name a path only under a condition on the config.
PATH_WHEN = {"data.path": lambda config: config.get("data", {}).get("source", "demo") != "demo",
             "model.pretrained": lambda config: config.get("model", {}).get("encoder") == "hf"}
# The settings of section `data` that the demo generator reads.
DEMO_READS = ("source", "demo", "workers")
SAFE_ID = re.compile(r"[^A-Za-z0-9._=,+-]")
MAX_ID_LEN = 80


@dataclasses.dataclass(frozen=True)
class Run:
    """One row of the matrix: its id, the values that vary, the resolved config, stage keys."""

    run_id: str
    values: dict[str, Any]
    config: dict[str, Any]
    keys: dict[str, str]
    inputs: dict[str, dict] = dataclasses.field(default_factory=dict)  # setting -> fingerprint


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An expanded experiment: where it came from, its results name and its runs."""

    path: Path
    name: str
    recipe: Path
    runs: list[Run]
    baseline: str  # the run the summary's paired tests compare with (default: the first run)


def format_value(value: Any) -> str:
    """Short text for a value in a run id: 0.0003 -> '0.0003', True -> 'true', [1,2] -> '[1,2]'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def short_names(keys: list[str]) -> dict[str, str]:
    """Last dotted component of each key, or the full key where two keys share that component."""
    last = [k.split(".")[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def make_run_id(values: dict[str, Any]) -> str:
    """A readable, deterministic, filesystem-safe id: `lr=0.0003,layers=4,seed=1`.

    Characters outside [A-Za-z0-9._=,+-] become `_`; ids that had to change that way, or that
    are longer than MAX_ID_LEN, end in a stable hash of the exact values so they stay unique.
    """
    if not values:
        return "default"
    names = short_names(list(values))
    text = ",".join(f"{names[k]}={format_value(v)}" for k, v in values.items())
    safe = SAFE_ID.sub("_", text).lstrip(".")
    if safe == text and len(safe) <= MAX_ID_LEN:
        return safe
    digest = hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{safe[:MAX_ID_LEN - 9]}-{digest}"


def stage_keys(config: dict, inputs: dict[str, dict] | None = None) -> dict[str, str]:
    """Hash what each stage reads: equal settings and inputs -> equal key -> shared job.

    `inputs` ({setting: fingerprint}, see `input_fingerprints`) enter the key of the stage that
    reads the file and of every stage downstream of it, so an edited manifest redoes them all.
    """
    keys, texts = {}, {}
    for stage in STAGES:
        if stage.keyed_like:
            keys[stage.name] = keys[stage.keyed_like]
        else:
            keys[stage.name] = _digest(_key_text(config, stage.name, inputs or {}, texts))
    return keys


def _key_text(config: dict, stage: str, inputs: dict[str, dict], texts: dict[str, str]) -> str:
    """What the key of `stage` hashes: its stage config, plus the inputs it depends on, as JSON.

    Exactly `json.dumps(blob, sort_keys=True)`, put together from the JSON of each section
    (`texts`, filled once per run): every stage reads the sections upstream of it, and writing
    each again per stage was most of expanding a 1,000-run sweep.
    """
    sections = [s for s in SECTIONS[BY_NAME[stage].keyed_like or stage] if s in config]  # sorted
    for section in sections:
        if section not in texts:
            value = json.dumps(_section_view(config, section), sort_keys=True, default=str)
            texts[section] = f"{json.dumps(section)}: {value}"
    text = "{" + ", ".join(texts[s] for s in sections) + "}"
    read = {setting: fp["sha1"] for setting, fp in inputs.items()
            if PATH_SETTINGS[setting.split("[")[0]] in upstream_closure(stage)}
    return f'{{"config": {text}, "inputs": {json.dumps(read, sort_keys=True)}}}' if read else text


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def input_fingerprints(config: dict, where: str, cache: dict[str, dict]) -> dict[str, dict]:
    """{setting: fingerprint} of every file or folder the config names; a missing one is an error.

    Checked here, before anything is submitted: a wrong path must not surface inside a SLURM job
    after the whole DAG was queued.
    """
    found = {}
    for setting, value in named_paths(config).items():
        if value not in cache:
            base = setting.split("[")[0]
            found_at = (PATH_RESOLVE[base](value, setting, where) if base in PATH_RESOLVE
                        else check_exists(value, setting, where, PATH_KINDS[base]))
            cache[value] = fingerprint(found_at)
        found[setting] = cache[value]
    return found


def named_paths(config: dict) -> dict[str, str]:
    """{setting: path} of the paths this config really reads (data.path only for a real corpus)."""
    paths = {}
    for setting in PATH_SETTINGS:
        if not PATH_WHEN.get(setting, lambda _: True)(config):
            continue
        value = _lookup(config, setting)
        if isinstance(value, list):
            paths.update({f"{setting}[{i}]": str(v) for i, v in enumerate(value) if v})
        elif value:
            paths[setting] = str(value)
    return paths


def _lookup(config: dict, dotted: str):
    """The value at a dotted key of a nested config, None when absent."""
    node = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def checkpoint_key(config: dict, inputs: dict[str, dict] | None = None) -> str:
    """Hash of the training sections without the `CHECKPOINT_NEUTRAL` settings."""
    train = {k: v for k, v in config.get("train", {}).items() if k not in CHECKPOINT_NEUTRAL}
    return _digest(_key_text({**config, "train": train}, "train", inputs or {}, {}))


def assign_checkpoint_keys(runs: list[Run]) -> None:
    """Set keys['checkpoints']: the neutral key, unless two trainings of this experiment differ
    only in a neutral setting (they would run at once): those keep their own train key."""
    neutral = [checkpoint_key(run.config, run.inputs) for run in runs]
    trainings: dict[str, set[str]] = {}
    for run, key in zip(runs, neutral):
        trainings.setdefault(key, set()).add(run.keys["train"])
    for run, key in zip(runs, neutral):
        run.keys["checkpoints"] = key if len(trainings[key]) == 1 else run.keys["train"]


def stage_config(config: dict, stage: str) -> dict:
    """The part of a resolved config that stage `stage` reads (its `--config` file)."""
    sections = SECTIONS[BY_NAME[stage].keyed_like or stage]
    return {s: _section_view(config, s) for s in sections if s in config}


def _section_view(config: dict, section: str):
    """What the stages read of one section of a resolved config."""
    value = config[section]
    if section == "data" and isinstance(value, dict):
        return data_read(value)
    if section == "features" and isinstance(value, dict) and value.get("type") == "waveform":
        return {"type": "waveform"}  # samples as they are: no mel settings read
    return value


def data_read(data: dict) -> dict:
    """What the data step reads of section `data`: the demo generator only its own settings, a
    real corpus everything but them (changing data.demo.seed must not redo a real corpus)."""
    if data.get("source", "demo") == "demo":
        return {k: v for k, v in data.items() if k in DEMO_READS}
    return {k: v for k, v in data.items() if k != "demo"}


def experiment_name(path: Path, root: Path | None = None) -> str:
    """Results folder of an experiment: config/experiments/asr/lr.yaml -> 'asr/lr'."""
    resolved = path.resolve()
    base = (root or Path.cwd()).resolve() / "config" / "experiments"
    try:
        rel = resolved.relative_to(base).with_suffix("")
        parts = rel.parts
    except ValueError:
        parts = (resolved.stem,)
    return "/".join(SAFE_ID.sub("_", p).lstrip(".") or "_" for p in parts)


def axes(spec: dict) -> list[list[dict[str, Any]]]:
    """The matrix axes, each a list of {dotted key: value} points, in file order."""
    result = [[{key: v} for v in values] for key, values in spec.get("variables", {}).items()]
    for group in spec.get("zip", []):
        length = len(next(iter(group.values())))
        result.append([{k: vs[i] for k, vs in group.items()} for i in range(length)])
    if spec.get("presets"):
        result.append([{"preset": name} for name in spec["presets"]])
    if spec.get("seeds"):
        result.append([{"seed": s} for s in spec["seeds"]])
    return result


def expand(spec: dict, recipe: dict, path: Path) -> list[Run]:
    """Every combination of the axes, merged over recipe + controls, as `Run`s."""
    base = deep_merge(recipe, undot(spec.get("controls", {})))
    runs, seen = [], {}
    for combo in itertools.product(*axes(spec)):  # no axes: one empty combination, one run
        values: dict[str, Any] = {}
        for point in combo:
            values.update(point)
        overrides = {k: v for k, v in values.items() if k != "preset"}
        config = base
        if "preset" in values:
            config = deep_merge(config, undot(spec["presets"][values["preset"]]))
        run_id = make_run_id(values)
        config = derive(deep_merge(config, undot(overrides)), f"{path} (run {run_id})")
        inputs = input_fingerprints(config, f"{path} (run {run_id})", seen)
        runs.append(Run(run_id, values, config, stage_keys(config, inputs), inputs))
    return runs


def derive(config: dict, where: str) -> dict:
    """Settings that follow from others, fixed here so that stage keys and jobs see the value:
    features.type auto -> waveform for model.encoder hf (a pretrained encoder reads samples), else logmel."""
    encoder, kind = config.get("model", {}).get("encoder"), config.get("features", {}).get("type", "auto")
    wanted = "waveform" if encoder == "hf" else "logmel"
    if kind not in ("auto", wanted):
        raise UserError(f"{where}: features.type: {kind} does not suit model.encoder {encoder}; "
                        f"use {wanted} or auto")
    # `config` is this run's own fresh merge: only the features section needs a new mapping.
    return {**config, "features": {**config.get("features", {}), "type": wanted}}


def check_unique_ids(runs: list[Run], path: Path) -> None:
    """Two runs must never share an id (they would share a folder)."""
    seen: dict[str, dict] = {}
    for run in runs:
        if run.run_id in seen:
            raise UserError(
                f"{path}: runs {seen[run.run_id]} and {run.values} get the same id "
                f"'{run.run_id}'; make the varied values distinct")
        seen[run.run_id] = run.values


def load_experiment(path: str | Path, root: Path | None = None) -> Experiment:
    """Read, check and expand an experiment file (raises `UserError` on any problem)."""
    path = Path(path)
    spec = load_yaml(path)
    if not isinstance(spec, dict):
        raise UserError(f"{path}: expected a mapping with keys recipe/controls/variables/...")
    recipe_file = recipe_path(spec.get("recipe", "default"), path, root)
    recipe = load_yaml(recipe_file)
    check_experiment(spec, recipe, path)
    # The schema is the one source of defaults: a recipe that leaves keys out gets the schema's,
    # so `explain`, the resolved config.yaml and the job all see the same value.
    recipe = deep_merge(schema_defaults(load_schema("recipe")), recipe)
    runs = expand(spec, recipe, path)
    check_unique_ids(runs, path)
    assign_checkpoint_keys(runs)
    for run in runs:
        validate_resolved(run.config, f"{path} (run {run.run_id})")
    check_baseline(spec.get("baseline"), [run.run_id for run in runs], path)
    return Experiment(path, experiment_name(path, root), recipe_file, runs,
                      spec.get("baseline", runs[0].run_id))
