# asrsweep: one experiment file -> a complete ASR sweep.
#
# Path scheme (R = config["results"], E = experiment name, e.g. `demo` or `asr/lr`):
#   R/E/<stage>/<key>/...   artifacts of one stage; <key> hashes the config sections the stage
#                           depends on, so runs that differ only downstream share upstream jobs
#   R/E/checkpoints/<stage>-<key>/  checkpoints (never declared outputs: never deleted)
#   R/E/runs/<run>/         a run's resolved config, provenance, commands and result.json
#   R/E/logs/<rule>/<key>.log, R/E/summary.tsv, R/summary.tsv
# Preview with `snakemake -n`; run with `snakemake -j2` or `--profile profiles/slurm`.

configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/functions.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/rescore.smk"
include: "workflow/rules/results.smk"


rule all:
    input:
        f"{RESULTS}/summary.tsv",
        expand(f"{RESULTS}/{{exp}}/report", exp=sorted(INDEX.experiments)),
    default_target: True
