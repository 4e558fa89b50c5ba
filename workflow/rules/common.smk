# Config validation, the run index and named input functions. Logic lives in the asrsweep
# package (tested there); this file only adapts it to snakemake.
import inspect
import re
import shlex
import sys

from snakemake.utils import validate

from asrsweep.core.common import UserError
from asrsweep.experiment.validate import schema_path, validate_workflow_config
from asrsweep.experiment.workflow import SweepIndex, environment_first_on_path, guard
from asrsweep.results.stats import summary_flags as summary_stats_flags

try:
    validate_workflow_config(config)  # one readable line for a bad key or value
    validate(config, schema_path("config"))  # fills in the defaults
    INDEX = SweepIndex(config["experiment"], config["results"])
    guard(INDEX, config["overwrite"])
except UserError as err:
    sys.exit(f"error: {err}")

# Jobs run `python -m asrsweep.<step>`: they must find this environment's python first (SLURM
# jobs inherit PATH through sbatch --export=ALL), never depending on an activated venv.
environment_first_on_path()
RESULTS = config["results"]
THREADS = config["threads"]
GPUS = config["gpus"]


wildcard_constraints:
    exp="|".join(re.escape(name) for name in INDEX.experiments),
    key="[0-9a-f]{10}",


def signature_once(func):
    """Keep `func`'s signature on it (`__signature__`, PEP 362).

    Snakemake inspects the signature of an input, params or resource function on every call:
    over 100,000 times to build the DAG of a 1,000-run sweep. Stored, each is a lookup.
    """
    func.__signature__ = inspect.signature(func)
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
    """Params function: this job's own stage folder."""

    def _dir(wildcards):
        return str(INDEX.stage_dir(wildcards.exp, stage, wildcards.key))

    _dir.__name__ = f"{stage}_dir"
    return signature_once(_dir)


def write_config(stage):
    """Params function: the command that writes the job's `--config` file, <folder>/config.json.

    Part of the job's own shell command (not a job of its own: a 1,000-run sweep would
    otherwise schedule thousands of one-line jobs). The job reads the experiment file itself,
    so the command stays one short line; the key in the folder name pins the config.
    """

    def _command(wildcards):
        folder = INDEX.stage_dir(wildcards.exp, stage, wildcards.key)
        experiment = shlex.quote(str(INDEX.experiments[wildcards.exp].path))
        return (f"python -m asrsweep.experiment.write_config --experiment {experiment} "
                f"--stage {stage} --key {wildcards.key} --out {folder}/config.json")

    _command.__name__ = f"write_{stage}_config"
    return signature_once(_command)


def checkpoint_dir(stage):
    """Params function: R/E/checkpoints/<stage>-<key>, outside every declared output.

    Acoustic training uses the run's `checkpoints` key (see `assign_checkpoint_keys`), so a
    raised step budget continues from the checkpoints of the shorter training.
    """

    def _dir(wildcards):
        run = INDEX.any_run(wildcards.exp, stage, wildcards.key)
        key = run.keys["checkpoints"] if stage == "train" else wildcards.key
        return f"{RESULTS}/{wildcards.exp}/checkpoints/{stage}-{key}"

    _dir.__name__ = f"checkpoints_of_{stage}"
    return signature_once(_dir)


def mem_by_attempt(base_mb):
    """Resource function: each retry asks for more memory (an out-of-memory kill retries bigger)."""

    def _mem(wildcards, attempt):
        return base_mb * attempt

    return signature_once(_mem)


@signature_once
def data_step(wildcards):
    """The step that prepares the corpus: the generated demo, or the ingestion of a real one."""
    source = INDEX.any_run(wildcards.exp, "data", wildcards.key).config["data"]["source"]
    return "prepare_demo" if source == "demo" else "prepare_corpus"


@signature_once
def train_launcher(wildcards, resources):
    """`python -m` on one device; torchrun (DDP, one process per GPU) when given several GPUs."""
    if resources.gpu > 1:
        return f"torchrun --standalone --nproc_per_node {resources.gpu} -m"
    return "python -m"


@signature_once
def sweep_shards(wildcards):
    """All shard tables of a decoder sweep (decode.sweep.shards jobs)."""
    count = INDEX.any_run(wildcards.exp, "decode", wildcards.key).config["decode"]["sweep"]["shards"]
    folder = INDEX.stage_dir(wildcards.exp, "decode", wildcards.key)
    return [f"{folder}/shards/{i}-of-{count}.tsv" for i in range(count)]


def decoder_inputs(stage):
    """Inputs every decoding job of `stage` reads: emissions, lexicon, n-gram, tokens."""
    return dict(
        emissions=upstream(stage, "emissions", "dev.pt", "test.pt"),
        lexicon=upstream(stage, "lexicon", "lexicon.txt"),
        arpa=upstream(stage, "ngram", "lm.arpa"),
        tokens=upstream(stage, "tokenizer", "tokens.txt"),
    )


@signature_once
def experiment_results(wildcards):
    """The leaf results of every run of an experiment (what run_result gathers)."""
    return INDEX.result_inputs(wildcards.exp)


@signature_once
def experiment_file(wildcards):
    """Params function: the experiment file as given on the command line."""
    return str(INDEX.experiments[wildcards.exp].path)


@signature_once
def summary_flags(wildcards):
    """Params function: summarize's --baseline, --resamples and --seed (the experiment's)."""
    return summary_stats_flags(INDEX.experiments[wildcards.exp])
