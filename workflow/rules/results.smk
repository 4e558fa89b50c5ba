# Per-run folders (resolved config, provenance, commands, result.json), the summary tables and
# the report. Every leaf result carries its parameters, so the summary only concatenates.


rule write_matrix:
    output:
        f"{RESULTS}/{{exp}}/matrix.tsv",
    params:
        experiment=experiment_file,
    log:
        f"{RESULTS}/{{exp}}/logs/write_matrix.log",
    localrule: True
    shell:
        "python -m asrsweep.sweep {params.experiment:q} --out {output:q} > {log:q} 2>&1"


rule run_result:
    input:
        train=run_stage_file("train", "train.json"),
        decode=run_stage_file("decode", "test.json"),
        sweep=run_stage_file("decode", "sweep.tsv"),
        rescore=run_stage_file("rescore", "test.json"),
    output:
        f"{RESULTS}/{{exp}}/runs/{{run}}/result.json",
    params:
        run_dir=run_dir,
        config=run_config,
        values=run_values,
        stages=run_stages,
    log:
        f"{RESULTS}/{{exp}}/logs/run_result/{{run}}.log",
    localrule: True
    shell:
        "python -m asrsweep.run_result --experiment {wildcards.exp:q} --run {wildcards.run:q}"
        " --run-dir {params.run_dir:q} --config-json {params.config} --values {params.values}"
        " --stages {params.stages}"
        " > {log:q} 2>&1"


rule summarize_experiment:
    input:
        results=experiment_results,
        matrix=f"{RESULTS}/{{exp}}/matrix.tsv",
    output:
        f"{RESULTS}/{{exp}}/summary.tsv",
    params:
        runs=f"{RESULTS}/{{exp}}/runs",
    log:
        f"{RESULTS}/{{exp}}/logs/summarize_experiment.log",
    localrule: True
    shell:
        "python -m asrsweep.summarize --runs {params.runs:q} --out {output:q} > {log:q} 2>&1"


rule summarize_all:
    input:
        expand(f"{RESULTS}/{{exp}}/summary.tsv", exp=sorted(INDEX.experiments)),
    output:
        report(f"{RESULTS}/summary.tsv", caption="../report/summary.rst", category="Summary"),
    log:
        f"{RESULTS}/logs/summarize_all.log",
    localrule: True
    shell:
        "python -m asrsweep.summarize --summaries {input:q} --out {output:q} > {log:q} 2>&1"


rule report_experiment:
    input:
        summary=f"{RESULTS}/{{exp}}/summary.tsv",
    output:
        report(
            directory(f"{RESULTS}/{{exp}}/report"),
            patterns=["{name}.png"],
            caption="../report/plots.rst",
            category="Plots",
        ),
    params:
        runs=f"{RESULTS}/{{exp}}/runs",
    log:
        f"{RESULTS}/{{exp}}/logs/report_experiment.log",
    localrule: True
    shell:
        "python -m asrsweep.report --summary {input.summary:q} --runs {params.runs:q}"
        " --outdir {output:q} > {log:q} 2>&1"
