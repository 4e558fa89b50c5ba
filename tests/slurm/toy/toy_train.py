"""A stand-in for a long training step: counts seconds, checkpoints, resumes.

    python toy_train.py --seconds 100 --ckpt ckpt/state.json --out done.txt [--save-delay 10]

Does one "step" per second (step count kept in --ckpt, outside the declared outputs, so
snakemake never deletes it). On SIGTERM or SIGUSR1 it writes the checkpoint and exits 75
(EX_TEMPFAIL), as asrsweep.train does; a resubmission resumes where it stopped. --save-delay
makes that checkpoint slow (a big model): it must still land before SLURM's KillWait ends.
The checkpoint records every attempt (start step, signal, step at the signal), since snakemake
deletes the rule's log before a retry; --out gets the final state.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

EXIT_PREEMPTED = 75


def save(ckpt: Path, state: dict) -> None:
    """Write the checkpoint atomically (a kill mid-write must not corrupt it)."""
    tmp = ckpt.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, ckpt)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--save-delay", type=float, default=0.0)
    args = parser.parse_args()
    args.ckpt.parent.mkdir(parents=True, exist_ok=True)
    state = json.loads(args.ckpt.read_text()) if args.ckpt.exists() else {"step": 0, "attempts": []}
    state["attempts"].append({"pid": os.getpid(), "start_step": state["step"],
                              "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                              "python": sys.executable})
    save(args.ckpt, state)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, lambda num, frame: stop.append(num))
    print(f"start at step {state['step']}", flush=True)
    while state["step"] < args.seconds:
        if stop:
            time.sleep(args.save_delay)
            state["attempts"][-1].update(signal=stop[0], stopped_at=state["step"])
            save(args.ckpt, state)
            print(f"signal {stop[0]} at step {state['step']}: checkpoint saved, exit {EXIT_PREEMPTED}", flush=True)
            sys.exit(EXIT_PREEMPTED)
        time.sleep(1)
        state["step"] += 1
        if state["step"] % 10 == 0:
            save(args.ckpt, state)
    save(args.ckpt, state)
    args.out.write_text(json.dumps(state) + "\n")
    print("done", flush=True)


if __name__ == "__main__":
    main()
