"""How planning scales, as ratios measured side by side: `python bench/plan_dryrun.py [--runs 1000 10000]`.

For each size it builds an experiment (10 learning rates × 10 beam sizes × S seeds: S × 10
trainings, S × 100 decoder runs) and times, alternating A B A B:
- A: `snakemake -n` of the real workflow on it;
- B: `snakemake -n` of a bare Snakefile with the same jobs and the same dependency shape: one
  rule per real rule, one job per real job, each job's input the outputs of the jobs it depends
  on (read from the real workflow's `snakemake -n --dag`). B is Snakemake's own cost of a DAG
  of that shape; A / B is what the workflow adds (goal ≤ 1.3);
- C: `snakemake -n` of a mirror Snakefile: the real rules with the same output, log and benchmark
  patterns, wildcards and resources, each job's input files and shell command looked up in a
  table (read from the real workflow's `snakemake -n -p`), no run index and no functions of ours.
  C / B is Snakemake's own cost of jobs with that many files and resources; A / C is what the
  workflow's code (run index, input, params and resource functions, shell strings) adds.
Then the time per job at the largest size against the smallest (goal ≤ 1.2: linear), and
`asrsweep plan` (goal < 2 s at 1,000 runs). Times are CPU seconds of the command (user +
system): single-threaded planning on a shared machine is measured by its own work that way. Every snakemake start imports the SLURM executor
plugin, which runs `scontrol show config`; the script times that probe too (a controller that
is down makes it wait ~9 s, which would otherwise hide in both figures).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NODE = re.compile(r'^\s*(\d+)\[label = "([a-z_]+)')
EDGE = re.compile(r"^\s*(\d+) -> (\d+)")
JOB = re.compile(r"^(?:local)?rule (\w+):\n(.*?)^Shell command: (.*?)$", re.S | re.M)
FIELD = re.compile(r"^    (\w+): (.*)$", re.M)
# Resources snakemake derives itself (from mem_mb, disk_mb) or sets for every job.
DERIVED_RESOURCES = ("tmpdir", "mem", "mem_mib", "disk", "disk_mib")


def experiment_text(runs: int) -> str:
    seeds = list(range(1, runs // 100 + 1))
    return ("description: planning benchmark.\n"
            "variables:\n"
            "  train.lr: [0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005]\n"
            "  decode.beam_size: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]\n"
            f"seeds: {seeds}\n")


def run(cmd: list[str], cwd: Path = ROOT) -> tuple[float, str]:
    """(CPU seconds, stdout) of a command that must succeed.

    CPU time (user + system of the command and its children), not wall time: on a shared
    machine the wall time of a single-threaded dry run mostly measures the neighbours.
    """
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def bare_snakefile(dot: str) -> tuple[str, dict, int]:
    """A Snakefile with the DAG of `dot` (snakemake --dag): same rules, jobs and edges."""
    rules, parents = {}, {}
    for line in dot.splitlines():
        if match := NODE.match(line):
            rules[match.group(1)] = match.group(2)
        elif match := EDGE.match(line):  # "a -> b": b needs a
            parents.setdefault(match.group(2), []).append(match.group(1))
    inputs = {job: [f"jobs/{rules[p]}/{p}.out" for p in sorted(parents.get(job, []))] for job in rules}
    lines = ["import json", "INPUTS = json.load(open('inputs.json'))", "",
             f"rule all:\n    input: INPUTS['{next(j for j, r in rules.items() if r == 'all')}']\n"]
    for name in sorted(set(rules.values()) - {"all"}):
        lines.append(f"rule {name}:\n    input: lambda w: INPUTS[w.job]\n"
                     f"    output: 'jobs/{name}/{{job}}.out'\n    shell: 'touch {{output}}'\n")
    return "\n".join(lines), inputs, len(rules)


def printed_jobs(printed: str) -> list[tuple[str, dict, str]]:
    """(rule, {field: value}, shell command) of every job of a `snakemake -n -p` output."""
    jobs = []
    for block in printed.split("\n[")[1:]:
        if match := JOB.search(block):
            rule, body, shell = match.groups()
            jobs.append((rule, dict(FIELD.findall(body)), shell))
    return jobs


def mirror_snakefile(printed: str, experiments: list[str]) -> tuple[str, dict, int]:
    """A Snakefile with the rules, file patterns, wildcards and resources of `printed`, no logic."""
    rules, table = {}, {}
    for rule, fields, shell in printed_jobs(printed):
        wildcards = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if kv)

        def pattern(path: str) -> str:
            if "shard" in wildcards:
                path = path.replace(f"{wildcards['shard']}-of-{wildcards['shards']}", "{shard}-of-{shards}")
            if "key" in wildcards:
                path = path.replace(wildcards["key"], "{key}")
            return path.replace(f"/{wildcards['exp']}/", "/{exp}/") if "exp" in wildcards else path

        resources = dict(kv.split("=", 1) for kv in fields.get("resources", "").split(", ") if kv)
        rules.setdefault(rule, {
            "files": {kind: [pattern(p) for p in fields[kind].split(", ")]
                      for kind in ("output", "log", "benchmark") if kind in fields},
            "resources": {k: v for k, v in resources.items() if k not in DERIVED_RESOURCES},
            "wildcards": sorted(wildcards)})
        job = "|".join([rule, *(wildcards[k] for k in sorted(wildcards))])
        table[job] = {"input": fields["input"].split(", ") if "input" in fields else [], "shell": shell}
    exp = "|".join(re.escape(name) for name in experiments)
    lines = ["import json", "JOBS = json.load(open('jobs.json'))", "",
             f"wildcard_constraints:\n    exp={exp!r},\n    key='[0-9a-f]{{10}}',\n",
             f"rule all:\n    input: {table['all']['input']!r}\n"]
    for rule, spec in rules.items():
        if rule == "all":
            continue
        job = " + '|' + ".join([repr(rule), *(f"w.{k}" for k in spec["wildcards"])])
        lines += [f"rule {rule}:", f"    input: lambda w: JOBS[{job}]['input']"]
        lines += [f"    {kind}: " + ", ".join(map(repr, paths)) for kind, paths in spec["files"].items()]
        lines.append(f"    params: cmd=lambda w: JOBS[{job}]['shell']")
        if spec["resources"]:
            lines.append("    resources: " + ", ".join(
                f"{k}={v if v.isdigit() else repr(v)}" for k, v in spec["resources"].items()))
        lines.append("    shell: '{params.cmd}'\n")
    return "\n".join(lines), table, len(table)


def measure(runs: int, rounds: int, tmp: Path) -> dict:
    """Real, bare and mirror `snakemake -n` of one size, alternating, medians."""
    exp = tmp / f"bench{runs}.yaml"
    exp.write_text(experiment_text(runs))
    config = ["--config", f"experiment={exp}", f"results={tmp}/results{runs}"]
    _, dot = run([str(BIN / "snakemake"), "-n", "--dag", *config])
    text, inputs, jobs = bare_snakefile(dot)
    bare = tmp / f"bare{runs}"
    bare.mkdir()
    (bare / "Snakefile").write_text(text)
    (bare / "inputs.json").write_text(json.dumps(inputs))
    _, printed = run([str(BIN / "snakemake"), "-n", "-p", *config])
    text, table, mirrored = mirror_snakefile(printed, [exp.stem])
    if mirrored != jobs:
        sys.exit(f"the mirror Snakefile has {mirrored} jobs, the workflow {jobs}")
    mirror = tmp / f"mirror{runs}"
    mirror.mkdir()
    (mirror / "Snakefile").write_text(text)
    (mirror / "jobs.json").write_text(json.dumps(table))
    times = {"real": [], "bare": [], "mirror": []}
    for _ in range(rounds):
        times["real"].append(run([str(BIN / "snakemake"), "-n", *config])[0])
        times["bare"].append(run([str(BIN / "snakemake"), "-n", "--cores", "1"], cwd=bare)[0])
        times["mirror"].append(run([str(BIN / "snakemake"), "-n", "--cores", "1"], cwd=mirror)[0])
    row = {"runs": runs, "jobs": jobs, **{name: statistics.median(t) for name, t in times.items()}}
    for name, (a, b) in {"ratio": ("real", "bare"), "mirror_bare": ("mirror", "bare"),
                         "real_mirror": ("real", "mirror")}.items():
        row[name] = statistics.median(x / y for x, y in zip(times[a], times[b]))
    return row


def scontrol_probe() -> str:
    """How long the SLURM plugin's `scontrol show config` takes here (part of every start)."""
    if shutil.which("scontrol") is None:
        return "no scontrol here: the SLURM plugin's startup probe costs nothing"
    start = time.monotonic()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=15)
    seconds = time.monotonic() - start
    note = " (a SLURM controller named in slurm.conf is not answering)" if seconds > 1 else ""
    return f"scontrol show config: {seconds:.2f} s, in every figure above{note}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", type=int, default=[1000, 10000], help="experiment sizes")
    parser.add_argument("--rounds", type=int, default=3, help="A/B/C rounds per size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exp = tmp / "plan.yaml"
        exp.write_text(experiment_text(min(args.runs)))
        plan_s, plan_out = run([str(BIN / "asrsweep"), "plan", str(exp), "--results", f"{tmp}/p"])
        rows = [measure(runs, args.rounds, tmp) for runs in args.runs]
    print(f"asrsweep plan, {plan_out.splitlines()[0]}: {plan_s:.2f} CPU s (goal < 2 s)")
    for r in rows:
        print(f"{r['runs']:>6} runs, {r['jobs']:>6} jobs: snakemake -n {r['real']:7.2f} CPU s, bare Snakefile "
              f"of the same DAG {r['bare']:7.2f} CPU s, ratio {r['ratio']:.2f} (goal <= 1.3); "
              f"{1000 * r['real'] / r['jobs']:.2f} ms/job")
        print(f"{'':>20} mirror Snakefile (same files, logs, benchmarks, resources; no workflow code) "
              f"{r['mirror']:7.2f} CPU s: mirror / bare {r['mirror_bare']:.2f} (Snakemake's own cost of "
              f"these jobs), real / mirror {r['real_mirror']:.2f} (what the workflow's code adds)")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        growth = (large["real"] / large["jobs"]) / (small["real"] / small["jobs"])
        print(f"time per job at {large['runs']} vs {small['runs']} runs: {growth:.2f}x (goal <= 1.2: linear)")
    print(scontrol_probe())


if __name__ == "__main__":
    main()
