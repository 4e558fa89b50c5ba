# CTC training per distinct acoustic setting (the GPU job) and its cached emissions.
# Checkpoints live in R/E/checkpoints/train-<key>/ (`checkpoint_dir` in functions.smk: <key> leaves out
# max_steps and the other CHECKPOINT_NEUTRAL settings of sweep.py, so a raised max_steps continues),
# outside the declared outputs: snakemake deletes the outputs of a failed job, and a killed or
# timed-out job must resume, never restart.


# Before any job of a real run starts (not in dry runs; SLURM job steps run no hooks).
onstart:
    try:
        check_multinode_executor(workflow.dag, workflow.executor_plugin.name)
    except UserError as err:
        sys.exit(f"error: {err}")


rule train:
    input:
        upstream("train", "features", "train.index.tsv", "dev.index.tsv"),
        upstream("train", "tokenizer", "tokens.txt"),
    output:
        model=stage_path("train", "model.pt"),
        log_tsv=stage_path("train", "train_log.tsv"),
        summary=stage_path("train", "train.json"),
    params:
        write_config=write_config("train"),
        launcher=train_launcher,
        features=upstream("train", "features"),
        tokenizer=upstream("train", "tokenizer"),
        outdir=stage_dir("train"),
        checkpoints=checkpoint_dir("train"),
    log:
        log_path("train"),
    benchmark:
        bench_path("train")
    threads: THREADS
    resources:
        gpu=train_gpus,
        # train.nodes > 1: one job over that many nodes, srun + torchrun (asrsweep.acoustic.launch)
        nodes=train_multinode,
        tasks=train_multinode,
        mpi=train_mpi,
        gres=train_gres,
        mem_mb=mem_by_attempt(8000),
        # At the time limit SLURM sends SIGTERM (then KillWait seconds): training checkpoints
        # and exits 75; the profile's retries resubmit the job and it resumes (README, "SLURM").
        runtime=240,
    shell:
        # exec: no shell stays between SLURM's SIGTERM and the trainer, which checkpoints.
        "exec > {log} 2>&1; {params.write_config}; exec {params.launcher} asrsweep.acoustic.train"
        " --config {params.outdir}/config.json --features {params.features}"
        " --tokenizer {params.tokenizer} --outdir {params.outdir}"
        " --checkpoint-dir {params.checkpoints} --threads {threads}"


rule compute_emissions:
    input:
        model=stage_path("train", "model.pt"),
        feats=upstream("emissions", "features", "dev.index.tsv", "test.index.tsv"),
    output:
        stage_path("emissions", "dev.pt"),
        stage_path("emissions", "test.pt"),
    params:
        features=upstream("emissions", "features"),
        outdir=stage_dir("emissions"),
    log:
        log_path("compute_emissions"),
    threads: THREADS
    resources:
        gpu=min(GPUS, 1),
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "python -m asrsweep.acoustic.emissions --model {input.model} --features {params.features}"
        " --outdir {params.outdir} --threads {threads} > {log} 2>&1"
