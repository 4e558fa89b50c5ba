"""python -m asrsweep.acoustic.launch --nodes N --tasks N --gpus-per-node G --threads T asrsweep.acoustic.train <train flags>

Starts one training over several nodes inside a SLURM job (`train.nodes` > 1; rule `train`):
`srun` runs this module once per node (`--task`), and each of those starts `torchrun` for its
node with a static rendezvous derived from SLURM's environment: node rank = SLURM_PROCID, nodes =
SLURM_NTASKS, master = the first host of SLURM_STEP_NODELIST, port = a function of SLURM_JOB_ID
(two jobs sharing a node never collide). torchrun numbers the ranks node by node, so global rank
= node rank x G + local rank. The ranks then train as under any torchrun (asrsweep.acoustic.train).

The srun line names nodes, tasks and CPUs itself: the Snakemake job step strips SLURM_* variables
other than the job id from the rule's environment, so srun could not inherit them. With
`--nodes 1 --tasks 2` (the local test cluster) two "nodes" share one host: the same launch, over
gloo on CPU.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

from asrsweep.core.common import UserError, cli_main

PORT_BASE, PORT_SPAN = 29500, 20000


def launcher(nodes: int, tasks: int, gpus: int, threads: int) -> str:
    """The command before `asrsweep.acoustic.train <flags>` in rule `train` (one place for all three ways).

    One node: `python -m`, or `torchrun --standalone` for several GPUs; several: this module.
    """
    if nodes == 1 and tasks == 1:
        return f"torchrun --standalone --nproc_per_node {gpus} -m" if gpus > 1 else "python -m"
    return f"python -m asrsweep.acoustic.launch --nodes {nodes} --tasks {tasks} --gpus-per-node {gpus} --threads {threads}"


def check_executor(executor: str, where: str, nodes: int) -> None:
    """Refuse a training over `nodes` > 1 nodes under an executor other than SLURM's, before any job runs.

    The launcher needs the job's srun (see the module docstring); caught at job start instead,
    every upstream job of a local run would have run first. `where` names the run (file and id).
    """
    if nodes > 1 and executor not in ("slurm", "touch"):  # touch runs nothing
        raise UserError(f"{where}: train.nodes: {nodes} runs as one SLURM job over {nodes} nodes, but this "
                        f"snakemake runs jobs with the '{executor}' executor; run with --profile profiles/slurm, "
                        "or on one machine set train.nodes: 1 and gpus: N")


def srun_argv(args: argparse.Namespace) -> list[str]:
    """srun of this module once per task (node), each with its share of the job's CPUs and GPUs."""
    argv = ["srun", f"--nodes={args.nodes}", f"--ntasks={args.tasks}", f"--cpus-per-task={args.threads}",
            "--kill-on-bad-exit=1"]  # one node failing ends the others (they would wait for it forever)
    if args.gpus_per_node:
        argv.append(f"--gres=gpu:{args.gpus_per_node}")
    return argv + [sys.executable, "-m", "asrsweep.acoustic.launch", "--task", *rest_flags(args)]


def rest_flags(args: argparse.Namespace) -> list[str]:
    """This module's flags and the training's, as given (for the per-task invocation)."""
    return ["--nodes", str(args.nodes), "--tasks", str(args.tasks), "--gpus-per-node", str(args.gpus_per_node),
            "--threads", str(args.threads), args.module, *args.train_flags]


def first_host(nodelist: str) -> str:
    """The first host name of a SLURM node list (`node[01-04]` -> node01), expanded by scontrol."""
    try:
        hosts = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                               check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as err:
        raise UserError(f"scontrol show hostnames {nodelist!r} failed ({err}); is this a SLURM node?") from None
    if not hosts:
        raise UserError(f"SLURM_STEP_NODELIST {nodelist!r} names no host")
    return hosts[0]


def torchrun_argv(args: argparse.Namespace, env: dict) -> list[str]:
    """torchrun for this task's node, its rendezvous read from srun's environment `env`."""
    missing = [k for k in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NODELIST", "SLURM_JOB_ID") if k not in env]
    if missing:
        raise UserError(f"--task runs under srun only: {', '.join(missing)} not set")
    port = PORT_BASE + int(env["SLURM_JOB_ID"]) % PORT_SPAN
    return ["torchrun", f"--nnodes={env['SLURM_NTASKS']}", f"--node-rank={env['SLURM_PROCID']}",
            f"--nproc-per-node={max(1, args.gpus_per_node)}", f"--master-addr={first_host(env['SLURM_STEP_NODELIST'])}",
            f"--master-port={port}", "-m", args.module, *args.train_flags]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, required=True, help="nodes of the srun step")
    parser.add_argument("--tasks", type=int, required=True, help="torchrun agents (one per node)")
    parser.add_argument("--gpus-per-node", type=int, required=True, help="ranks per agent (0: one CPU rank)")
    parser.add_argument("--threads", type=int, required=True, help="CPUs per agent")
    parser.add_argument("--task", action="store_true", help="(internal) run as one srun task: start torchrun")
    parser.add_argument("module", help="the training module, asrsweep.acoustic.train")
    parser.add_argument("train_flags", nargs=argparse.REMAINDER, help="its flags")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    """Outside srun: exec srun of the tasks; as a task: exec torchrun (see the module docstring)."""
    args = parse(argv)
    if args.task:
        command = torchrun_argv(args, dict(os.environ))
    elif "SLURM_JOB_ID" not in os.environ:
        raise UserError(f"train.nodes: {args.tasks} runs as one SLURM job over {args.tasks} nodes; run with "
                        "--profile profiles/slurm, or on one machine set train.nodes: 1 and gpus: N")
    else:
        command = srun_argv(args)
    print("launch:", shlex.join(command), file=sys.stderr, flush=True)
    os.execvp(command[0], command)  # no process in between: SLURM's SIGTERM reaches the trainers


def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    cli_main(run, argv)


if __name__ == "__main__":
    main()
