# Per-run folders (resolved config, provenance, commands, result.json), the summary tables and
# the report. Every leaf result carries its parameters, so the summary only concatenates.


def run_config_text(wildcards):
    """Params function: the run's resolved config as JSON, shell-quoted."""
    return shlex.quote(json.dumps(INDEX.run(wildcards.exp, wildcards.run).config, sort_keys=True))


def run_stage_file(stage, filename):
    """Input function: a file of the `stage` folder of a run."""

    def _path(wildcards):
        key = INDEX.run(wildcards.exp, wildcards.run).keys[stage]
        return str(INDEX.stage_dir(wildcards.exp, stage, key) / filename)

    _path.__name__ = f"run_{stage}_{filename.replace('.', '_')}"
    return _path


def run_values(wildcards):
    """Params function: the run's varied values as JSON, shell-quoted."""
    return shlex.quote(json.dumps(INDEX.run(wildcards.exp, wildcards.run).values, sort_keys=True))


def run_stages(wildcards):
    """Params function: {stage: main output} of the run as JSON, shell-quoted."""
    return shlex.quote(INDEX.stages_json(wildcards.exp, wildcards.run))


def experiment_results(wildcards):
    """All result.json files of an experiment."""
    return [f"{d}/result.json" for (exp, _), d in INDEX.run_dirs().items() if exp == wildcards.exp]


def experiment_file(wildcards):
    return str(INDEX.experiments[wildcards.exp].path)


rule write_run_config:
    output:
        f"{RESULTS}/{{exp}}/runs/{{run}}/config.yaml",
    params:
        json=run_config_text,
    log:
        f"{RESULTS}/{{exp}}/logs/write_run_config/{{run}}.log",
    localrule: True
    shell:
        "python -m asrsweep.write_config --json {params.json} --out {output:q} > {log:q} 2>&1"


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
        config=f"{RESULTS}/{{exp}}/runs/{{run}}/config.yaml",
        train=run_stage_file("train", "train.json"),
        decode=run_stage_file("decode", "test.json"),
        sweep=run_stage_file("decode", "sweep.tsv"),
        rescore=run_stage_file("rescore", "test.json"),
    output:
        f"{RESULTS}/{{exp}}/runs/{{run}}/result.json",
    params:
        run_dir=f"{RESULTS}/{{exp}}/runs/{{run}}",
        values=run_values,
        stages=run_stages,
    log:
        f"{RESULTS}/{{exp}}/logs/run_result/{{run}}.log",
    localrule: True
    shell:
        "python -m asrsweep.run_result --experiment {wildcards.exp:q} --run {wildcards.run:q}"
        " --run-dir {params.run_dir:q} --values {params.values} --stages {params.stages}"
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
