# Named input, params and resource functions of the rules (one per thing a job needs from the
# index). Logic lives in the asrsweep package; these only look things up for a job's wildcards.
import shlex


def write_config(stage):
    """Params function: the command that writes the job's `--config` file, <folder>/config.json.

    Part of the job's own shell command (not a job of its own: a 1,000-run sweep would
    otherwise schedule thousands of one-line jobs). The job reads the experiment file itself,
    so the command stays one short line; the key in the folder name pins the config.
    """

    def _command(wildcards):
        exp, key = wildcards.exp, wildcards.key
        return (f"python -m asrsweep.experiment.write_config --experiment {EXPERIMENT_ARGS[exp]} "
                f"--stage {stage} --key {key} --out {INDEX.folder(exp, stage, key)}/config.json")

    _command.__name__ = f"write_{stage}_config"
    return signature_once(_command)


# Each experiment file as a shell word, quoted once rather than once per job.
EXPERIMENT_ARGS = {name: shlex.quote(str(exp.path)) for name, exp in INDEX.experiments.items()}


def checkpoint_dir(stage):
    """Params: R/E/checkpoints/<stage>-<key>, outside every declared output.

    Acoustic training uses the run's `checkpoints` key (see `assign_checkpoint_keys`), so a
    raised step budget continues from the checkpoints of the shorter training: a function.
    Other stages use their own key: a wildcard pattern, which costs snakemake less than a call.
    """
    if stage != "train":
        return f"{RESULTS}/{{exp}}/checkpoints/{stage}-{{key}}"

    def _dir(wildcards):
        key = INDEX.any_run(wildcards.exp, stage, wildcards.key).keys["checkpoints"]
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


def _data_shard_count(wildcards):
    """data.shards of a real corpus; 1 (one job, no merge) for the generated demo."""
    data = INDEX.any_run(wildcards.exp, "data", wildcards.key).config["data"]
    return 1 if data["source"] == "demo" else data["shards"]


def _part_files(folder, count):
    """<folder>/I-of-N/part.json of each of `count` shard jobs; none when the stage is one job."""
    return [f"{folder}/{i}-of-{count}/part.json" for i in range(count)] if count > 1 else []


def _merge_flags(count):
    """` --merge --num-shards N` for the index job of `count` > 1 shard jobs, else nothing."""
    return f" --merge --num-shards {count}" if count > 1 else ""


@signature_once
def data_shards(wildcards):
    """Input function: the part.json of every data shard job; none when the corpus is one job."""
    folder = INDEX.folder(wildcards.exp, "data", wildcards.key)
    return _part_files(f"{folder}/shards", _data_shard_count(wildcards))


@signature_once
def data_merge_flags(wildcards):
    """Params function: ` --merge --num-shards N` for a sharded corpus, else nothing."""
    return _merge_flags(_data_shard_count(wildcards))


def _train_nodes(wildcards):
    return INDEX.any_run(wildcards.exp, "train", wildcards.key).config["train"]["nodes"]


def check_multinode_executor(dag, executor):
    """onstart: every train job to run over several nodes needs the SLURM executor (one clear line)."""
    for job in dag.needrun_jobs():
        if job.rule.name == "train":
            run = INDEX.any_run(job.wildcards.exp, "train", job.wildcards.key)
            where = f"{INDEX.experiments[job.wildcards.exp].path} (run {run.run_id})"
            check_executor(executor, where, _train_nodes(job.wildcards))


@signature_once
def train_launcher(wildcards, resources, threads):
    """`python -m` on one device, torchrun (DDP) for several GPUs, srun + torchrun over several nodes."""
    nodes = _train_nodes(wildcards)
    gpus = resources.get("gpu", 0) if nodes == 1 else GPUS
    return launcher(resources.get("nodes", 1), resources.get("tasks", 1), gpus, threads)


@signature_once
def train_multinode(wildcards):
    """Resources `nodes` and `tasks` (one torchrun agent per node) for train.nodes > 1; none otherwise."""
    nodes = _train_nodes(wildcards)
    return nodes if nodes > 1 else None


@signature_once
def train_mpi(wildcards):
    """Resource `mpi` for train.nodes > 1: the job step runs the rule without its own `srun -n1`
    (the launcher's srun starts the tasks); absent (None) otherwise."""
    return "srun" if _train_nodes(wildcards) > 1 else None


@signature_once
def train_gpus(wildcards):
    """Resource `gpu` (sbatch --gpus, the job's total) on one node; None over several (see train_gres)."""
    return GPUS if _train_nodes(wildcards) == 1 else None


@signature_once
def train_gres(wildcards):
    """Resource `gres` over several nodes: `gpu:<gpus>` per node (sbatch --gres); None on one node."""
    return f"gpu:{GPUS}" if _train_nodes(wildcards) > 1 and GPUS else None


@signature_once
def sweep_shards(wildcards):
    """All shard tables of a decoder sweep (decode.sweep.shards jobs)."""
    count = INDEX.any_run(wildcards.exp, "decode", wildcards.key).config["decode"]["sweep"]["shards"]
    folder = INDEX.folder(wildcards.exp, "decode", wildcards.key)
    return [f"{folder}/shards/{i}-of-{count}.tsv" for i in range(count)]


def decoder_inputs(stage, splits=("dev", "test")):
    """Inputs every decoding job of `stage` reads: the emissions of `splits`, lexicon, n-gram, tokens."""
    return dict(
        emissions=upstream(stage, "emissions", *(f"{split}.pt" for split in splits)),
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


def _feature_shard_count(wildcards):
    """features.shards of a features stage (1: one extraction job, no merge)."""
    return INDEX.any_run(wildcards.exp, "features", wildcards.key).config["features"]["shards"]


@signature_once
def feature_shards(wildcards):
    """Input function: the part.json of every feature shard job; none when extraction is one job."""
    folder = INDEX.folder(wildcards.exp, "features", wildcards.key)
    return _part_files(f"{folder}/parts", _feature_shard_count(wildcards))


@signature_once
def features_merge_flags(wildcards):
    """Params function: ` --merge --num-shards N` for sharded extraction, else nothing."""
    return _merge_flags(_feature_shard_count(wildcards))
