# Corpus -> features and tokenizer. Each is computed once per setting of its sections and
# shared by every run that uses it.


rule prepare_data:
    input:
        config=stage_path("data", "config.json"),
    output:
        train=stage_path("data", "train.tsv"),
        dev=stage_path("data", "dev.tsv"),
        test=stage_path("data", "test.tsv"),
        lm_text=stage_path("data", "lm.txt"),
        report=stage_path("data", "report.json"),
    params:
        step=data_step,
        outdir=stage_dir("data"),
    log:
        log_path("prepare_data"),
    benchmark:
        bench_path("prepare_data")
    threads: THREADS
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "python -m asrsweep.{params.step} --config {input.config} --outdir {params.outdir}"
        " --threads {threads} > {log} 2>&1"


rule compute_features:
    input:
        config=stage_path("features", "config.json"),
        manifests=upstream("features", "data", "train.tsv", "dev.tsv", "test.tsv"),
    output:
        feats=[stage_path("features", f"{s}.pt") for s in ("train", "dev", "test")],
        cmvn=stage_path("features", "cmvn.json"),
    params:
        data=upstream("features", "data"),
        outdir=stage_dir("features"),
    log:
        log_path("compute_features"),
    benchmark:
        bench_path("compute_features")
    threads: THREADS
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "python -m asrsweep.compute_features --config {input.config} --data {params.data}"
        " --outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule train_tokenizer:
    input:
        config=stage_path("tokenizer", "config.json"),
        train=upstream("tokenizer", "data", "train.tsv"),
    output:
        model=stage_path("tokenizer", "spm.model"),
        tokens=stage_path("tokenizer", "tokens.txt"),
    params:
        data=upstream("tokenizer", "data"),
        outdir=stage_dir("tokenizer"),
    log:
        log_path("train_tokenizer"),
    resources:
        mem_mb=mem_by_attempt(2000),
        runtime=30,
    shell:
        "python -m asrsweep.train_tokenizer --config {input.config} --data {params.data}"
        " --outdir {params.outdir} > {log} 2>&1"
