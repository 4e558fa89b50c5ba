# Second pass, as in wav2letter: the n-best lists of decode_frozen -> Transformer-LM scores ->
# grid-search rescoring tuned on dev and applied frozen to test.


rule train_lm:
    input:
        text=upstream("lm", "data", "lm.txt"),
        eval=upstream("lm", "data", "dev.tsv", "test.tsv"),
    output:
        stage_path("lm", "lm.json"),
    params:
        write_config=write_config("lm"),
        outdir=stage_dir("lm"),
        checkpoints=checkpoint_dir("lm"),
    log:
        log_path("train_lm"),
    benchmark:
        bench_path("train_lm")
    threads: THREADS
    resources:
        gpu=min(GPUS, 1),
        mem_mb=mem_by_attempt(4000),
        runtime=120,
    shell:
        "({params.write_config} && python -m asrsweep.rescoring.train_lm"
        " --config {params.outdir}/config.json --text {input.text} --eval {input.eval} --outdir {params.outdir}"
        " --checkpoint-dir {params.checkpoints} --threads {threads}) > {log} 2>&1"


rule score_lm:
    input:
        nbest=upstream("lmscore", "nbest", "dev.tsv", "test.tsv"),
        lm=upstream("lmscore", "lm", "lm.json"),
    output:
        stage_path("lmscore", "dev.tsv"),
        stage_path("lmscore", "test.tsv"),
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
        "python -m asrsweep.rescoring.score_lm --lm {params.lm} --nbest {params.nbest}"
        " --outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule rescore:
    input:
        upstream("rescore", "nbest", "dev.tsv", "test.tsv"),
        upstream("rescore", "lmscore", "dev.tsv", "test.tsv"),
        upstream("rescore", "emissions", "dev.pt", "test.pt"),
        first_pass=upstream("rescore", "decode", "best_on_dev.json"),
    output:
        grid=stage_path("rescore", "grid.tsv"),
        best=stage_path("rescore", "best_on_dev.json"),
        test=stage_path("rescore", "test.json"),
        hyps=[stage_path("rescore", f"hyps_{split}.tsv") for split in ("dev", "test")],
    params:
        write_config=write_config("rescore"),
        nbest=upstream("rescore", "nbest"),
        scores=upstream("rescore", "lmscore"),
        emissions=upstream("rescore", "emissions"),
        outdir=stage_dir("rescore"),
    log:
        log_path("rescore"),
    shell:
        "({params.write_config} && python -m asrsweep.rescoring.rescore"
        " --config {params.outdir}/config.json --nbest {params.nbest} --lmscore {params.scores}"
        " --emissions {params.emissions} --first-pass {input.first_pass}"
        " --outdir {params.outdir}) > {log} 2>&1"
