# Config validation, the run index, wildcard constraints and the path helpers. Logic lives in the
# asrsweep package (tested there); this file only adapts it to snakemake (functions.smk: the
# named input, params and resource functions).
import inspect
import re
import sys

from snakemake.common import overwrite_function_params
from snakemake.utils import validate

from asrsweep.acoustic.launch import check_executor, launcher
from asrsweep.core.common import UserError
from asrsweep.experiment.validate import schema_path, validate_workflow_config
from asrsweep.experiment.workflow import SweepIndex, environment_first_on_path, guard, long_lived
from asrsweep.results.stats import summary_flags as summary_stats_flags

try:
    with long_lived():  # the index lives as long as snakemake: the collector need not rescan it
        validate_workflow_config(config)  # one readable line for a bad key or value
        validate(config, schema_path("config"))  # fills in the defaults
        INDEX = SweepIndex(config["experiment"], config["results"])
        guard(INDEX, config["overwrite"])
except UserError as err:
    sys.exit(f"error: {err}")

# Jobs run `python -m asrsweep.<stage>.<step>`: they must find this environment's python first (SLURM
# jobs inherit PATH through sbatch --export=ALL), never depending on an activated venv.
environment_first_on_path()
RESULTS = config["results"]
THREADS = config["threads"]
GPUS = config["gpus"]


wildcard_constraints:
    exp="|".join(re.escape(name) for name in INDEX.experiments),
    key="[0-9a-f]{10}",


def signature_once(func):
    """Give snakemake `func`'s parameters once (its `overwrite_function_params` hook).

    Snakemake asks for the parameters of an input, params or resource function on every call,
    over 100,000 times for the DAG of a 1,000-run sweep; without the hook each is an
    `inspect.signature` (1.6 us even with `__signature__` stored), with it an attribute (0.08 us).
    """
    overwrite_function_params(func, inspect.signature(func).parameters)
    return func


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
    return signature_once(_path)


def stage_dir(stage):
    """Params value: this job's own stage folder, R/{exp}/<stage>/{key}.

    A pattern, not a function: snakemake fills in the wildcards of a string param far more
    cheaply than it calls a function (one call fewer per job).
    """
    return f"{INDEX.prefix}{{exp}}/{stage}/{{key}}"
