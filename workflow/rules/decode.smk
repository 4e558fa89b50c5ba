# N-gram LM, lexicon, and the wav2letter-style decoder sweep over cached emissions: shards of the
# dev sweep run as separate jobs and merge; then dev and test are decoded once with the frozen
# dev choice, which gives the first-pass result and the n-best lists for rescoring.


rule train_ngram:
    input:
        text=upstream("ngram", "data", "lm.txt"),
        eval=upstream("ngram", "data", "dev.tsv", "test.tsv"),
    output:
        stage_path("ngram", "lm.arpa"),
        stage_path("ngram", "sentences.txt"),
        stage_path("ngram", "ngram.json"),
    params:
        write_config=write_config("ngram"),
        outdir=stage_dir("ngram"),
    log:
        log_path("train_ngram"),
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "({params.write_config} && python -m asrsweep.decoding.train_ngram"
        " --config {params.outdir}/config.json --text {input.text} --eval {input.eval}"
        " --outdir {params.outdir})"
        " > {log} 2>&1"


rule make_lexicon:
    input:
        tokens=upstream("lexicon", "tokenizer", "tokens.txt"),
        arpa=upstream("lexicon", "ngram", "lm.arpa"),
        sentences=upstream("lexicon", "ngram", "sentences.txt"),
    output:
        lexicon=stage_path("lexicon", "lexicon.txt"),
        token_lm=stage_path("lexicon", "tokens.arpa"),
    params:
        tokenizer=upstream("lexicon", "tokenizer"),
        outdir=stage_dir("lexicon"),
    log:
        log_path("make_lexicon"),
    shell:
        "python -m asrsweep.decoding.make_lexicon --tokenizer {params.tokenizer} --arpa {input.arpa}"
        " --sentences {input.sentences}"
        " --outdir {params.outdir} > {log} 2>&1"


rule decode_sweep:
    input:
        **decoder_inputs("decode", splits=["dev"]),  # tuned on dev: new test emissions leave the sweep be
    output:
        stage_path("decode", "shards/{shard}-of-{shards}.tsv"),
    params:
        write_config=write_config("decode"),
        emissions=upstream("decode", "emissions"),
        outdir=stage_dir("decode"),
    log:
        f"{RESULTS}/{{exp}}/logs/decode_sweep/{{key}}-{{shard}}-of-{{shards}}.log",
    benchmark:
        f"{RESULTS}/{{exp}}/benchmarks/decode_sweep/{{key}}-{{shard}}-of-{{shards}}.tsv"
    threads: THREADS
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=120,
    shell:
        "({params.write_config} && python -m asrsweep.decoding.decode_sweep"
        " --config {params.outdir}/config.json --emissions {params.emissions}"
        " --lexicon {input.lexicon} --arpa {input.arpa} --tokens {input.tokens}"
        " --shard {wildcards.shard} --num-shards {wildcards.shards} --threads {threads}"
        " --out {output}) > {log} 2>&1"


rule merge_sweep:
    input:
        sweep_shards,
    output:
        sweep=stage_path("decode", "sweep.tsv"),
        best=stage_path("decode", "best_on_dev.json"),
    params:
        outdir=stage_dir("decode"),
    log:
        log_path("merge_sweep"),
    shell:
        "python -m asrsweep.decoding.merge_sweep --config {params.outdir}/config.json --shards {input}"
        " --out-dir {params.outdir} > {log} 2>&1"


rule decode_frozen:
    input:
        best=upstream("nbest", "decode", "best_on_dev.json"),
        **decoder_inputs("nbest"),
    output:
        test=stage_path("nbest", "test.json"),
        hyps=[stage_path("nbest", f"hyps_{s}.tsv") for s in ("dev", "test")],
        greedy=[stage_path("nbest", f"hyps_greedy_{s}.tsv") for s in ("dev", "test")],
        nbest=[stage_path("nbest", f"{s}.tsv") for s in ("dev", "test")],
    params:
        write_config=write_config("nbest"),
        emissions=upstream("nbest", "emissions"),
        outdir=stage_dir("nbest"),
    log:
        log_path("decode_frozen"),
    threads: THREADS
    resources:
        mem_mb=mem_by_attempt(4000),
        runtime=60,
    shell:
        "({params.write_config} && python -m asrsweep.decoding.decode_frozen"
        " --config {params.outdir}/config.json --emissions {params.emissions}"
        " --lexicon {input.lexicon} --arpa {input.arpa} --tokens {input.tokens}"
        " --best {input.best} --threads {threads} --outdir {params.outdir}) > {log} 2>&1"
