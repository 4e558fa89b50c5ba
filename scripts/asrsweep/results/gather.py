"""A run's result: the leaf results of its stages, read from their folders.

Library module (no CLI), used by `python -m asrsweep.results.run_result` (which writes it as
result.json) and by `asrsweep collect` (which gathers it for runs finished mid-sweep).
"""

from __future__ import annotations

from pathlib import Path

from asrsweep.core.common import read_json


def stage_dirs(stages: dict[str, str]) -> dict[str, Path]:
    """stage -> its folder (the parent of its main output)."""
    return {stage: Path(path).parent for stage, path in stages.items()}


# hyps_{split}.tsv of each result stage: (stage folder in result.json's paths, file pattern).
HYPS = {"greedy": ("nbest", "hyps_greedy_{split}.tsv"), "ngram_beam": ("nbest", "hyps_{split}.tsv"),
        "rescored": ("rescore", "hyps_{split}.tsv")}


def hyps_path(paths: dict, stage: str, split: str) -> Path | None:
    """The per-utterance errors of a result stage on a split, when its stage folder has them."""
    folder, pattern = HYPS[stage]
    path = Path(paths[folder]) / pattern.format(split=split) if paths.get(folder) else None
    return path if path is not None and path.exists() else None


def optional_json(path: Path) -> dict | None:
    return read_json(path) if path.exists() else None


def gather(stages: dict[str, str]) -> dict:
    """The leaf results of a run's stages, as written by their steps."""
    dirs = stage_dirs(stages)
    beam = {"best_on_dev": read_json(dirs["decode"] / "best_on_dev.json"),
            "test": read_json(dirs["nbest"] / "test.json")}
    # The decoder sweep scores greedy decoding on dev and test for reference.
    dev_greedy, test_greedy = beam["best_on_dev"].get("greedy", {}), beam["test"].get("greedy", {})
    return {
        "train": read_json(dirs["train"] / "train.json"),
        "greedy": {"dev_wer": dev_greedy.get("dev_wer"), "dev_cer": dev_greedy.get("dev_cer"),
                   "test_wer": test_greedy.get("wer"), "test_cer": test_greedy.get("cer")},
        "beam": beam,
        "rescore": {"best_on_dev": optional_json(dirs["rescore"] / "best_on_dev.json"),
                    "test": optional_json(dirs["rescore"] / "test.json")},
        "lm": optional_json(dirs["lm"] / "lm.json"),
        "paths": {**{stage: str(folder) for stage, folder in dirs.items()},
                  "train_log": str(dirs["train"] / "train_log.tsv"),
                  "lm_log": str(dirs["lm"] / "train_log.tsv"),
                  "sweep": str(dirs["decode"] / "sweep.tsv"),
                  "grid": str(dirs["rescore"] / "grid.tsv")},
    }


def result_of(experiment: str, run_id: str, values: dict, stages: dict[str, str]) -> dict:
    """A run's result.json, less its commands: its varied values and its stages' leaf results."""
    return {"experiment": experiment, "run": run_id, "values": values, **gather(stages)}
