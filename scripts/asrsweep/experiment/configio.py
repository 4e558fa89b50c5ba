"""Reading YAML configs: a loader that reads `3e-4` as a number, and recipe lookup.

Not a step; used by `asrsweep.experiment.sweep`, `asrsweep.experiment.plan` and `asrsweep.experiment.explain`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from asrsweep.core.common import UserError


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: `1e-3` (no dot) is a float, `2024-01-01` a string.

    Config values must be JSON values (they are hashed, schema-checked and written as JSON);
    YAML 1.1 timestamps would be Python dates.
    """


# Copy-on-write: the resolvers dict is shared with SafeLoader until a subclass replaces it.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """Construct a mapping, refusing a key written twice (YAML would keep the last silently)."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' is written twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_yaml(text: str, where: str) -> Any:
    """Parse YAML text; a syntax error becomes one `UserError` line naming `where`."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}:{line}: invalid YAML: {problem}") from None


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file (see `parse_yaml`); a missing file is a `UserError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"{path}: file not found") from None
    return parse_yaml(text, str(path))


def dump_yaml(data: Any) -> str:
    """YAML text of a config, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def repo_root() -> Path:
    """The checkout this package lives in (scripts/asrsweep/ -> the repository root)."""
    return Path(__file__).resolve().parents[3]


def recipe_path(name: Any, experiment: Path, root: Path | None = None) -> Path:
    """Find a recipe: a name in config/recipes/, or a path relative to the experiment or cwd."""
    if not isinstance(name, str) or not name:
        raise UserError(f"{experiment}: recipe: expected a recipe name or path, got {name!r}")
    root = root or Path.cwd()
    candidates = [root / "config" / "recipes" / f"{name}.yaml", experiment.parent / name,
                  Path(name), repo_root() / "config" / "recipes" / f"{name}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in (root / "config" / "recipes").glob("*.yaml"))
    raise UserError(f"{experiment}: recipe: '{name}' not found; use one of {known} or a file path")
