# Corpus -> features and tokenizer. Each is computed once per setting of its sections and
# shared by every run that uses it. Each job first writes its --config into its own folder.


rule prepare_data_shard:
    output:
        stage_path("data", "shards/{shard}-of-{shards}/part.json"),
    params:
        write_config=write_config("data"),
        outdir=stage_dir("data"),
    log:
        f"{RESULTS}/{{exp}}/logs/prepare_data_shard/{{key}}-{{shard}}-of-{{shards}}.log",
    benchmark:
        f"{RESULTS}/{{exp}}/benchmarks/prepare_data_shard/{{key}}-{{shard}}-of-{{shards}}.tsv"
    threads: THREADS
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "({params.write_config} && python -m asrsweep.data.prepare_corpus"
        " --config {params.outdir}/config.json --outdir {params.outdir}"
        " --shard {wildcards.shard} --num-shards {wildcards.shards}) > {log} 2>&1"


# data.shards > 1 (a real corpus): the shard jobs above convert, this job merges (--merge).
rule prepare_data:
    input:
        data_shards,
    output:
        train=stage_path("data", "train.tsv"),
        dev=stage_path("data", "dev.tsv"),
        test=stage_path("data", "test.tsv"),
        lm_text=stage_path("data", "lm.txt"),
        report=stage_path("data", "report.json"),
    params:
        write_config=write_config("data"),
        step=data_step,
        merge=data_merge_flags,
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
        "({params.write_config} && python -m asrsweep.data.{params.step}"
        " --config {params.outdir}/config.json --outdir {params.outdir}{params.merge}) > {log} 2>&1"


# features.shards N: N shard jobs write parts/I-of-N/, then compute_features merges (--merge).
rule compute_features_shard:
    wildcard_constraints:
        shard="[0-9]+",
        shards="[0-9]+",
    input:
        upstream("features", "data", "train.tsv", "dev.tsv", "test.tsv"),
    output:
        stage_path("features", "parts/{shard}-of-{shards}/part.json"),
    params:
        write_config=write_config("features"),
        data=upstream("features", "data"),
        outdir=stage_dir("features"),
    log:
        f"{RESULTS}/{{exp}}/logs/compute_features_shard/{{key}}-{{shard}}-of-{{shards}}.log",
    benchmark:
        f"{RESULTS}/{{exp}}/benchmarks/compute_features_shard/{{key}}-{{shard}}-of-{{shards}}.tsv"
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "({params.write_config} && python -m asrsweep.data.compute_features"
        " --config {params.outdir}/config.json --data {params.data} --outdir {params.outdir}"
        " --threads {threads} --shard {wildcards.shard} --num-shards {wildcards.shards}) > {log} 2>&1"


rule compute_features:
    input:
        upstream("features", "data", "train.tsv", "dev.tsv", "test.tsv"),
        feature_shards,
    output:
        index=[stage_path("features", f"{s}.index.tsv") for s in ("train", "dev", "test")],
        cmvn=stage_path("features", "cmvn.json"),
    params:
        write_config=write_config("features"),
        data=upstream("features", "data"),
        merge=features_merge_flags,
        outdir=stage_dir("features"),
    log:
        log_path("compute_features"),
    benchmark:
        bench_path("compute_features")
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "({params.write_config} && python -m asrsweep.data.compute_features"
        " --config {params.outdir}/config.json --data {params.data} --outdir {params.outdir}"
        " --threads {threads}{params.merge}) > {log} 2>&1"


rule train_tokenizer:
    input:
        upstream("tokenizer", "data", "train.tsv"),
    output:
        model=stage_path("tokenizer", "spm.model"),
        tokens=stage_path("tokenizer", "tokens.txt"),
    params:
        write_config=write_config("tokenizer"),
        data=upstream("tokenizer", "data"),
        outdir=stage_dir("tokenizer"),
    log:
        log_path("train_tokenizer"),
    resources:
        mem_mb=mem_by_attempt(2000),
        runtime=30,
    shell:
        "({params.write_config} && python -m asrsweep.data.train_tokenizer"
        " --config {params.outdir}/config.json --data {params.data} --outdir {params.outdir})"
        " > {log} 2>&1"
