# Second pass, as in wav2letter: n-best dumps with the frozen decoder setting -> Transformer-LM
# scores -> grid-search rescoring tuned on dev and applied frozen to test.


rule train_lm:
    input:
        config=stage_path("lm", "config.json"),
        text=upstream("lm", "data", "lm.txt"),
    output:
        summary=stage_path("lm", "lm.json"),
    params:
        outdir=stage_dir("lm"),
        checkpoints=f"{RESULTS}/{{exp}}/checkpoints/lm-{{key}}",
    log:
        log_path("train_lm"),
    benchmark:
        bench_path("train_lm")
    threads: THREADS
    resources:
        gpu=min(GPUS, 1),
        mem_mb=mem_by_attempt(4000),
        runtime=120,
        slurm_extra="'--signal=B:USR1@120'",
    shell:
        "HF_HUB_OFFLINE=1 python -m asrsweep.train_lm --config {input.config} --text {input.text}"
        " --outdir {params.outdir} --checkpoint-dir {params.checkpoints} --threads {threads}"
        " > {log} 2>&1"


rule dump_nbest:
    input:
        config=stage_path("nbest", "config.json"),
        best=upstream("nbest", "decode", "best_on_dev.json"),
        **decoder_inputs("nbest"),
    output:
        [stage_path("nbest", f"{s}.tsv") for s in ("dev", "test")],
    params:
        emissions=upstream("nbest", "emissions"),
        outdir=stage_dir("nbest"),
    log:
        log_path("dump_nbest"),
    threads: THREADS
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "python -m asrsweep.dump_nbest --config {input.config} --emissions {params.emissions}"
        " --lexicon {input.lexicon} --arpa {input.arpa} --tokens {input.tokens}"
        " --best {input.best} --threads {threads} --outdir {params.outdir} > {log} 2>&1"


rule score_lm:
    input:
        nbest=upstream("lmscore", "nbest", "dev.tsv", "test.tsv"),
        lm=upstream("lmscore", "lm", "lm.json"),
    output:
        [stage_path("lmscore", f"{s}.tsv") for s in ("dev", "test")],
    params:
        lm=upstream("lmscore", "lm"),
        nbest=upstream("lmscore", "nbest"),
        outdir=stage_dir("lmscore"),
    log:
        log_path("score_lm"),
    threads: THREADS
    resources:
        gpu=min(GPUS, 1),
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "HF_HUB_OFFLINE=1 python -m asrsweep.score_lm --lm {params.lm} --nbest {params.nbest}"
        " --outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule rescore:
    input:
        config=stage_path("rescore", "config.json"),
        nbest=upstream("rescore", "nbest", "dev.tsv", "test.tsv"),
        scores=upstream("rescore", "lmscore", "dev.tsv", "test.tsv"),
        emissions=upstream("rescore", "emissions", "dev.pt", "test.pt"),
    output:
        grid=stage_path("rescore", "grid.tsv"),
        best=stage_path("rescore", "best_on_dev.json"),
        test=stage_path("rescore", "test.json"),
    params:
        nbest=upstream("rescore", "nbest"),
        scores=upstream("rescore", "lmscore"),
        emissions=upstream("rescore", "emissions"),
        outdir=stage_dir("rescore"),
    log:
        log_path("rescore"),
    shell:
        "python -m asrsweep.rescore --config {input.config} --nbest {params.nbest}"
        " --lmscore {params.scores} --emissions {params.emissions} --outdir {params.outdir}"
        " > {log} 2>&1"
