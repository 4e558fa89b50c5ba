# Config validation, the run index and named input functions. Logic lives in the asrsweep
# package (tested there); this file only adapts it to snakemake.
import json
import re
import shlex
import sys

from snakemake.utils import validate

from asrsweep.common import UserError
from asrsweep.validate import schema_path, validate_workflow_config
from asrsweep.workflow import STAGE_OUTPUTS, SweepIndex, guard

try:
    validate_workflow_config(config)  # one readable line for a bad key or value
    validate(config, schema_path("config"))  # fills in the defaults
    INDEX = SweepIndex(config["experiment"], config["results"])
    guard(INDEX, config["overwrite"])
except UserError as err:
    sys.exit(f"error: {err}")

RESULTS = config["results"]
THREADS = config["threads"]
GPUS = config["gpus"]


wildcard_constraints:
    exp="|".join(re.escape(name) for name in INDEX.experiments),
    key="[0-9a-f]{10}",
    run="[A-Za-z0-9._=,+-]+",
    split="dev|test",


def stage_path(stage, filename):
    """Path pattern of a file of a stage folder: R/{exp}/<stage>/{key}/<filename>."""
    return f"{RESULTS}/{{exp}}/{stage}/{{key}}/{filename}"


def log_path(rule_name):
    """Log of a job: R/{exp}/logs/<rule>/{key}.log."""
    return f"{RESULTS}/{{exp}}/logs/{rule_name}/{{key}}.log"


def bench_path(rule_name):
    """Benchmark of a job: R/{exp}/benchmarks/<rule>/{key}.tsv."""
    return f"{RESULTS}/{{exp}}/benchmarks/{rule_name}/{{key}}.tsv"


def upstream(stage, upstream_stage, *filenames):
    """Input function: files of the `upstream_stage` folder that a `stage` job reads.

    No filename: the folder itself (for a step's flag); one: its path; several: a list.
    """

    def _path(wildcards):
        folder = INDEX.upstream_dir(wildcards.exp, stage, wildcards.key, upstream_stage)
        paths = [f"{folder}/{name}" for name in filenames]
        return paths[0] if len(paths) == 1 else (paths or folder)

    _path.__name__ = f"{upstream_stage}_of_{stage}"
    return _path


def stage_dir(stage):
    """Params function: this job's own stage folder."""

    def _dir(wildcards):
        return str(INDEX.stage_dir(wildcards.exp, stage, wildcards.key))

    _dir.__name__ = f"{stage}_dir"
    return _dir


def quoted_stage_config(wildcards):
    """Params function: the job's `--config` JSON, shell-quoted."""
    return shlex.quote(INDEX.stage_config_json(wildcards.exp, wildcards.stage, wildcards.key))


def setting(stage, dotted):
    """Params function: one resolved setting of the run(s) behind a `stage` job."""

    def _value(wildcards):
        value = INDEX.any_run(wildcards.exp, stage, wildcards.key).config
        for part in dotted.split("."):
            value = value[part]
        return value

    _value.__name__ = f"{stage}_{dotted.replace('.', '_')}"
    return _value


def mem_by_attempt(base_mb):
    """Resource function: each retry asks for more memory (an out-of-memory kill retries bigger)."""

    def _mem(wildcards, attempt):
        return base_mb * attempt

    return _mem
