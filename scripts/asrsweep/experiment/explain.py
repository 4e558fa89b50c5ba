"""python -m asrsweep.experiment.explain config/experiments/demo.yaml   (`asrsweep explain E.yaml`)

List every setting of a recipe or experiment.

For each dotted key: the value, the recipe default and the schema's description; keys the
experiment changes (controls) or varies (variables, zip, presets, seeds) are marked.
`--render-recipe` prints config/recipes/default.yaml as rendered from the schema.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from asrsweep.core.common import UserError, cli_main
from asrsweep.experiment.configio import load_yaml
from asrsweep.experiment.nested import flatten, undot
from asrsweep.experiment.sweep import load_experiment
from asrsweep.experiment.validate import EXPERIMENT_KEYS, load_schema, schema_keys, validate_resolved


def yaml_scalar(value: Any) -> str:
    """One-line YAML for a default: numbers, booleans, null, strings, inline lists."""
    if isinstance(value, float) and math.isinf(value):
        return "-.inf" if value < 0 else ".inf"
    if isinstance(value, list):
        return "[" + ", ".join(yaml_scalar(v) for v in value) + "]"
    return json.dumps(value)


def render_recipe(schema: dict, indent: int = 0) -> list[str]:
    """YAML lines of the schema's defaults, each key commented with its description."""
    lines = []
    pad = " " * indent
    for name, sub in schema.get("properties", {}).items():
        text = " ".join(str(sub.get("description", "")).split())
        if sub.get("type") == "object":
            lines.append(f"{pad}{name}:  # {text}")
            lines += render_recipe(sub, indent + 2)
        else:
            lines.append(f"{pad}{name}: {yaml_scalar(sub.get('default'))}  # {text}")
    return lines


def rows(configs: list[dict], marks: dict[str, str]) -> list[tuple[str, str, str, str, str]]:
    """(mark, key, value, default, description) for every leaf setting of the first config.

    A varied key shows each of its values over `configs` (one per run), in run order: `4 | 6`.
    """
    keys = schema_keys(load_schema("recipe"))
    flats = [flatten(config) for config in configs]
    out = []
    for key, value in flats[0].items():
        sub = keys.get(key, {})
        mark = next((m for k, m in marks.items() if key == k or key.startswith(k + ".")), "")
        shown = yaml_scalar(value)
        if mark == "varied":
            shown = " | ".join(dict.fromkeys(yaml_scalar(flat[key]) for flat in flats if key in flat))
        out.append((mark, key, shown, yaml_scalar(sub.get("default")),
                    " ".join(str(sub.get("description", "")).split())))
    return out


def explain(path: Path) -> list[tuple[str, str, str, str, str]]:
    """Rows for a recipe file, or for an experiment (every value of a varied key, marks)."""
    data = load_yaml(path)
    if isinstance(data, dict) and set(data) & set(EXPERIMENT_KEYS):  # a recipe has none of them
        exp = load_experiment(path)
        spec = data
        marks = {k: "changed" for k in flatten(undot(spec.get("controls") or {}))}
        varied = {k for run in exp.runs for k in run.values}
        for preset in (spec.get("presets") or {}).values():
            varied |= set(flatten(undot(preset)))
        marks.update({k: "varied" for k in varied if k != "preset"})
        return rows([run.config for run in exp.runs], marks)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a recipe or experiment mapping")
    validate_resolved(data, str(path))
    return rows([data], {})


def run(argv: list[str] | None = None) -> None:
    """Print every setting with its value, default and description."""
    parser = argparse.ArgumentParser(prog="asrsweep explain", description=run.__doc__)
    parser.add_argument("path", type=Path, nargs="?", help="recipe or experiment YAML")
    parser.add_argument("--render-recipe", action="store_true",
                        help="print the default recipe rendered from the schema")
    args = parser.parse_args(argv)
    if args.render_recipe:
        header = ["# The default recipe: every setting of every stage with its default.",
                  "# Rendered from workflow/schemas/recipe.schema.yaml by",
                  "# `asrsweep explain --render-recipe`; edit the schema, not this file."]
        print("\n".join(header + render_recipe(load_schema("recipe"))))
        return
    if args.path is None:
        parser.error("give a recipe or experiment file (or --render-recipe)")
    table = explain(args.path)
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        print("  ".join(cells) + "  " + row[4])



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
