"""Nested mappings and dotted keys: merge, nest ("train.lr" -> {"train": {"lr"}}) and flatten.

Library module (no CLI) of the experiment stage: experiment files say `train.lr: 1e-3` where
recipes nest; `sweep`, `validate`, `explain` and `workflow` convert between the two.
"""

from __future__ import annotations

import copy
from typing import Any


def deep_merge(base: dict, override: dict) -> dict:
    """Return `base` updated by `override`: mappings merge deeply; scalars and lists replace."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def undot(dotted: dict[str, Any]) -> dict:
    """Turn {"train.lr": 1} (or nested mappings, or a mix) into a nested mapping."""
    nested: dict = {}
    for key, value in dotted.items():
        parts = str(key).split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, dict):
            value = undot(value)
        if isinstance(node.get(parts[-1]), dict) and isinstance(value, dict):
            node[parts[-1]] = deep_merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = value
    return nested


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    """Turn a nested mapping into {"dotted.key": leaf value}."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat
