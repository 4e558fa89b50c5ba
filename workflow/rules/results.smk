# The run folders (resolved config, provenance, commands, result.json: one job per experiment),
# the summary tables and the report. Every leaf result carries its parameters, so the summary
# only concatenates.


rule write_matrix:
    output:
        f"{RESULTS}/{{exp}}/matrix.tsv",
    params:
        experiment=experiment_file,
    log:
        f"{RESULTS}/{{exp}}/logs/write_matrix.log",
    localrule: True
    shell:
        "python -m asrsweep.experiment.write_matrix {params.experiment:q} --out {output:q} > {log:q} 2>&1"


rule run_result:
    input:
        experiment_results,
    output:
        directory(f"{RESULTS}/{{exp}}/runs"),
    params:
        experiment=experiment_file,
    log:
        f"{RESULTS}/{{exp}}/logs/run_result.log",
    localrule: True
    shell:
        "python -m asrsweep.results.run_result --experiment {params.experiment:q} --runs-dir {output:q}"
        " > {log:q} 2>&1"


rule summarize_experiment:
    input:
        runs=f"{RESULTS}/{{exp}}/runs",
        matrix=f"{RESULTS}/{{exp}}/matrix.tsv",
    output:
        f"{RESULTS}/{{exp}}/summary.tsv",
    params:
        stats=summary_flags,
    log:
        f"{RESULTS}/{{exp}}/logs/summarize_experiment.log",
    localrule: True
    shell:
        "python -m asrsweep.results.summarize --runs {input.runs:q} --out {output:q} {params.stats}"
        " > {log:q} 2>&1"


rule summarize_all:
    input:
        expand(f"{RESULTS}/{{exp}}/summary.tsv", exp=sorted(INDEX.experiments)),
    output:
        report(f"{RESULTS}/summary.tsv", caption="../report/summary.rst", category="Summary"),
    log:
        f"{RESULTS}/logs/summarize_all.log",
    localrule: True
    shell:
        "python -m asrsweep.results.summarize --summaries {input:q} --out {output:q} > {log:q} 2>&1"


rule report_experiment:
    input:
        summary=f"{RESULTS}/{{exp}}/summary.tsv",
        runs=f"{RESULTS}/{{exp}}/runs",
    output:
        report(
            directory(f"{RESULTS}/{{exp}}/report"),
            patterns=["{name}.html", "{name}.png"],
            caption="../report/plots.rst",
            category="Report",
        ),
    log:
        f"{RESULTS}/{{exp}}/logs/report_experiment.log",
    localrule: True
    shell:
        "python -m asrsweep.results.report --summary {input.summary:q} --runs {input.runs:q}"
        " --outdir {output:q} > {log:q} 2>&1"
