# Resolved configs: each stage folder's config.json (the --config of its step) and each run's
# config.yaml. Jobs write them, not the parser, so that `snakemake -n` writes nothing.


rule write_stage_config:
    output:
        f"{RESULTS}/{{exp}}/{{stage}}/{{key}}/config.json",
    params:
        json=quoted_stage_config,
    log:
        f"{RESULTS}/{{exp}}/logs/write_stage_config/{{stage}}-{{key}}.log",
    wildcard_constraints:
        stage="|".join(s for s in STAGE_OUTPUTS if s != "emissions"),
    localrule: True
    shell:
        "python -m asrsweep.write_config --json {params.json} --out {output} > {log} 2>&1"
