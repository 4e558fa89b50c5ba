"""The one registry of pipeline stages: what each reads, what marks it done, what a run gathers.

Library module (no CLI). `asrsweep.experiment.sweep` derives each stage's key (a hash of the
config sections it depends on) from it, `asrsweep.experiment.workflow` the done-files and the
result files of a run, `asrsweep.results.*` the stages of a result; a new stage is one entry
here, one rule and one step.

    data → features, tokenizer → train → emissions ─┐
    data → ngram → lexicon (+ tokenizer) ───────────┴→ decode → nbest ─┐
    data → lm ─────────────────────────────────────────────────────────┴→ lmscore → rescore
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """One stage folder kind: R/<experiment>/<name>/<key>/.

    sections: the config sections its own step reads; upstream: the stages whose folders it
    reads (their sections count towards its key); output: the file whose existence means it is
    done; results: files of its folder that a run's result.json gathers; keyed_like: a stage
    whose key it shares (emissions are made once per trained model).
    """

    name: str
    sections: tuple[str, ...]
    upstream: tuple[str, ...]
    output: str
    results: tuple[str, ...] = ()
    keyed_like: str | None = None


# In pipeline order: a stage comes after everything upstream of it.
STAGES: tuple[Stage, ...] = (
    Stage("data", ("data",), (), "train.tsv", ("report.json",)),
    Stage("features", ("features",), ("data",), "train.index.tsv"),
    Stage("tokenizer", ("tokenizer",), ("data",), "tokens.txt"),
    Stage("train", ("seed", "model", "train"), ("features", "tokenizer"), "model.pt", ("train.json",)),
    Stage("emissions", (), ("train",), "test.pt", keyed_like="train"),
    Stage("ngram", ("ngram",), ("data",), "lm.arpa"),
    Stage("lexicon", (), ("tokenizer", "ngram"), "lexicon.txt"),
    # score (the scoring normalisation) enters decode's key and so nbest's and rescore's.
    Stage("decode", ("decode", "score"), ("emissions", "lexicon"), "best_on_dev.json", ("best_on_dev.json",)),
    Stage("lm", ("seed", "lm"), ("data",), "lm.json", ("lm.json",)),
    Stage("nbest", ("nbest",), ("decode",), "test.json", ("test.json",)),
    Stage("lmscore", (), ("nbest", "lm"), "test.tsv"),
    Stage("rescore", ("rescore",), ("lmscore",), "test.json", ("test.json",)),
)
BY_NAME = {stage.name: stage for stage in STAGES}
# The stages of a run's result, in the order summaries list them.
RESULT_STAGES = ("greedy", "ngram_beam", "rescored")


def _cumulative_sections() -> dict[str, tuple[str, ...]]:
    """stage -> every section it depends on (its own and all upstream), sorted."""
    depends: dict[str, set[str]] = {}
    for stage in STAGES:
        depends[stage.name] = set(stage.sections).union(*(depends[up] for up in stage.upstream))
    return {name: tuple(sorted(sections)) for name, sections in depends.items()}


SECTIONS = _cumulative_sections()


@functools.cache
def upstream_closure(name: str) -> frozenset[str]:
    """`name` and every stage upstream of it."""
    stage = BY_NAME[name]
    return frozenset({name, *(s for up in stage.upstream for s in upstream_closure(up))})


def result_files() -> list[tuple[str, str]]:
    """(stage, filename) of every leaf file a run's result gathers."""
    return [(stage.name, filename) for stage in STAGES for filename in stage.results]
