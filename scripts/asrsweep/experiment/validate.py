"""Checks on experiment files and resolved configs, each problem one line naming file and key.

Not a step; `asrsweep.experiment.sweep` calls it before anything is expanded or written. Recipes and
resolved configs are checked against workflow/schemas/recipe.schema.yaml (JSON schema, as
`snakemake.utils.validate` does); the experiment's own structure is checked here.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

from asrsweep.core.common import UserError
from asrsweep.experiment.configio import load_yaml, repo_root
from asrsweep.experiment.nested import flatten, undot

EXPERIMENT_KEYS = ("description", "recipe", "controls", "variables", "zip", "presets", "seeds", "baseline")
PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@functools.cache
def load_schema(name: str) -> dict:
    """A schema from workflow/schemas/<name>.schema.yaml."""
    return load_yaml(repo_root() / "workflow" / "schemas" / f"{name}.schema.yaml")


def schema_keys(schema: dict, prefix: str = "") -> dict[str, dict]:
    """Every dotted key the schema defines (mappings included) -> its sub-schema."""
    keys = {}
    for name, sub in schema.get("properties", {}).items():
        keys[prefix + name] = sub
        keys.update(schema_keys(sub, f"{prefix}{name}."))
    return keys


def schema_defaults(schema: dict) -> Any:
    """The defaults a schema declares, nested: a mapping with properties is filled key by key
    (its own `default` only where it has no properties), anything else is its `default`."""
    if "properties" in schema:
        return {name: schema_defaults(sub) for name, sub in schema["properties"].items()
                if "properties" in sub or "default" in sub}
    return copy.deepcopy(schema.get("default"))


def first_schema_error(instance: Any, schema: dict, prefix: tuple[str, ...] = ()) -> str | None:
    """'key: message' for the first schema violation (None when valid); keys start with `prefix`."""
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(instance),
                    key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return None
    err = errors[0]
    where = ".".join([*prefix, *map(str, err.absolute_path)])
    return f"{where}: {err.message}" if where else err.message


def validate_resolved(config: dict, where: str) -> None:
    """Refuse a resolved config (recipe + overrides) that breaks the recipe schema.

    Checked section by section, each distinct section value once: the runs of a sweep share
    most sections, and the recipe schema has no rule across sections (no if/then, allOf or
    required), so this equals validating the whole config (`asrsweep plan` of 1,000 runs:
    1.75 s -> 0.74 s).
    """
    problem = first_schema_error(config, _top_level_schema())
    for name in sorted(config) if problem is None and isinstance(config, dict) else ():
        problem = _section_error(name, json.dumps(config[name], sort_keys=True))
        if problem:
            break
    if problem:
        raise UserError(f"{where}: {problem}")


@functools.cache
def _top_level_schema() -> dict:
    """The recipe schema with every section accepted as is (sections are checked one by one)."""
    schema = load_schema("recipe")
    return {**schema, "properties": {name: True for name in schema["properties"]}}


@functools.lru_cache(maxsize=4096)
def _section_error(name: str, value_json: str) -> str | None:
    """first_schema_error of one top-level section, keyed by its JSON text."""
    return first_schema_error(json.loads(value_json), load_schema("recipe")["properties"][name], (name,))


def validate_workflow_config(config: dict) -> None:
    """Refuse a bad workflow config (config/config.yaml + --config) with one line."""
    problem = first_schema_error(config, load_schema("config"))
    if problem:
        raise UserError(f"workflow config (config/config.yaml or --config): {problem}")


class _Problems:
    """Collects one line per problem; raises them together."""

    def __init__(self, path: Path):
        self.path, self.lines = path, []

    def add(self, key: str, text: str) -> None:
        self.lines.append(f"{self.path}: {key}: {text}")

    def raise_any(self) -> None:
        if self.lines:
            raise UserError("\n".join(self.lines))


def check_experiment(spec: dict, recipe: dict, path: Path) -> None:
    """All structural and semantic checks of an experiment file (see config/README.md)."""
    problems = _Problems(path)
    for key in spec:
        if key not in EXPERIMENT_KEYS:
            problems.add(key, f"unknown top-level key{_did_you_mean(key, EXPERIMENT_KEYS)}")
    problem = first_schema_error(recipe, load_schema("recipe"))
    if problem:
        problems.add("recipe", f"the recipe breaks the schema: {problem}")
    known = schema_keys(load_schema("recipe"))
    controls = _check_overrides(spec.get("controls", {}), "controls", known, problems)
    varied = _check_variables(spec.get("variables", {}), known, problems)
    varied += _check_zip(spec.get("zip", []), known, problems)
    varied += _check_presets(spec.get("presets", {}), known, problems)
    varied += _check_seeds(spec.get("seeds"), problems)
    _check_overlaps(controls, varied, problems)
    for key in varied:
        if key == "stats" or key.startswith("stats."):
            problems.add(key, "the statistics settings apply to the whole summary; set them in controls")
    if "baseline" in spec and not isinstance(spec["baseline"], str):
        problems.add("baseline", f"expected a run id (text), got {json.dumps(spec['baseline'])}")
    problems.raise_any()


def check_baseline(baseline: str | None, run_ids: list[str], path: Path) -> None:
    """The experiment's `baseline` must name one of its runs (checked once they are expanded)."""
    if baseline is not None and baseline not in run_ids:
        shown = ", ".join(run_ids[:5]) + (", ..." if len(run_ids) > 5 else "")
        raise UserError(f"{path}: baseline: no run '{baseline}'{_did_you_mean(baseline, run_ids)} "
                        f"(the runs: {shown})")


def _did_you_mean(key: str, options) -> str:
    match = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _check_value(where: str, key: str, value: Any, known: dict, problems: _Problems) -> bool:
    """Is `key` a recipe setting and does `value` fit its schema? Records the problem if not."""
    if key not in known:
        problems.add(where, f"unknown setting '{key}'{_did_you_mean(key, known)}")
        return False
    problem = first_schema_error(value, known[key])
    if problem:
        problems.add(where, f"value {json.dumps(value)} does not fit '{key}': {problem}")
        return False
    return True


def _dotted(mapping: Any, where: str, problems: _Problems) -> dict[str, Any]:
    """Overrides as {dotted key: value}; nested mappings are walked down to known leaves."""
    if not isinstance(mapping, dict):
        problems.add(where, f"expected a mapping of settings, got {type(mapping).__name__}")
        return {}
    return flatten(undot(mapping))


def _check_overrides(mapping: Any, where: str, known: dict, problems: _Problems) -> list[str]:
    keys = []
    for key, value in _dotted(mapping, where, problems).items():
        _check_value(f"{where}.{key}", key, value, known, problems)
        keys.append(key)
    return keys


def _check_list(where: str, key: str, values: Any, known: dict, problems: _Problems) -> bool:
    """A variable's value list: a non-empty list of distinct values that fit the setting."""
    if not isinstance(values, list):
        problems.add(where, f"expected a list of values, got {json.dumps(values)}; write [{json.dumps(values)}]")
        return False
    if not values:
        problems.add(where, "empty list of values; give at least one value or remove the key")
        return False
    if key not in known:
        problems.add(where, f"unknown setting '{key}'{_did_you_mean(key, known)}")
        return False
    texts = [json.dumps(v, sort_keys=True) for v in values]
    dups = sorted({t for t in texts if texts.count(t) > 1})
    if dups:
        problems.add(where, f"duplicate value(s) {', '.join(dups)}; each value must appear once")
    return all([_check_value(where, key, v, known, problems) for v in values]) and not dups


def _check_variables(variables: Any, known: dict, problems: _Problems) -> list[str]:
    if not isinstance(variables, dict):
        problems.add("variables", "expected a mapping of dotted key -> list of values")
        return []
    for key, values in variables.items():
        _check_list(f"variables.{key}", str(key), values, known, problems)
    return [str(k) for k in variables]


def _check_zip(groups: Any, known: dict, problems: _Problems) -> list[str]:
    if not isinstance(groups, list) or not all(isinstance(g, dict) and g for g in groups):
        problems.add("zip", "expected a list of groups, each a mapping of dotted key -> list")
        return []
    keys = []
    for i, group in enumerate(groups):
        lengths = {k: len(v) for k, v in group.items() if isinstance(v, list)}
        for key, values in group.items():
            _check_list(f"zip[{i}].{key}", str(key), values, known, problems)
        if len(set(lengths.values())) > 1:
            problems.add(f"zip[{i}]", f"lists of unequal length {lengths}; zipped lists must have equal length")
        keys += [str(k) for k in group]
    return keys


def _check_presets(presets: Any, known: dict, problems: _Problems) -> list[str]:
    if not isinstance(presets, dict):
        problems.add("presets", "expected a mapping of preset name -> settings")
        return []
    keys = []
    for name, overrides in presets.items():
        if not PRESET_NAME.match(str(name)):
            problems.add(f"presets.{name}", "preset names may use letters, digits and . _ + - only")
        if not overrides:
            problems.add(f"presets.{name}", "empty preset; give it at least one setting")
            continue
        keys += _check_overrides(overrides, f"presets.{name}", known, problems)
    return sorted(set(keys))


def _check_seeds(seeds: Any, problems: _Problems) -> list[str]:
    if seeds is None:
        return []
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        problems.add("seeds", f"expected a non-empty list of integers, got {json.dumps(seeds)}")
        return ["seed"]
    if len(set(seeds)) != len(seeds):
        problems.add("seeds", f"duplicate seeds in {seeds}; each seed must appear once")
    return ["seed"]


def _check_overlaps(controls: list[str], varied: list[str], problems: _Problems) -> None:
    """A setting is either fixed (control) or varied, and varied by one axis only."""
    for i, key in enumerate(varied):
        for other in varied[i + 1:]:
            if _overlap(key, other):
                problems.add(key, f"varied twice (also as '{other}'); vary it in one place")
        for control in controls:
            if _overlap(key, control):
                problems.add(key, f"is both a control ('{control}') and varied; remove one")


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def schema_path(name: str) -> Path:
    """Path of a schema file (for `snakemake.utils.validate` in the Snakefile)."""
    return repo_root() / "workflow" / "schemas" / f"{name}.schema.yaml"
