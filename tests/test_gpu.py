"""GPU paths: bf16 autocast + torch.compile training, DDP on one GPU, LM scoring on the GPU.

Skipped without CUDA (CI has none); run them on a GPU machine with `pytest -m gpu`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from test_train import fake_corpus, run_cli, train_argv, write_config
from test_train_lm import argv as lm_argv
from test_train_lm import setup_files

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return fake_corpus(tmp_path_factory.mktemp("gpu"))


def test_bf16_compiled_training_runs_and_improves(corpus, tmp_path):
    config = write_config(tmp_path / "c.json", max_steps=20, precision="bf16", compile=True)
    proc = run_cli(train_argv(corpus, config, tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "out" / "train.json").read_text())
    assert info["steps"] == 20
    log = (tmp_path / "run" / "out" / "train_log.tsv").read_text().splitlines()
    losses = [float(row.split("\t")[3]) for row in log[1:] if row.split("\t")[3]]
    assert losses[-1] < losses[0]


def test_ddp_with_one_gpu_through_torchrun(corpus, tmp_path):
    config = write_config(tmp_path / "c.json", max_steps=6)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           "-m", "asrsweep.acoustic.train", *train_argv(corpus, config, tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "out" / "train.json").read_text())["steps"] == 6


def test_lm_scores_on_gpu_equal_cpu_scores(tmp_path):
    from asrsweep.rescoring import score_lm
    from asrsweep.rescoring import train_lm

    config, text = setup_files(tmp_path, max_steps=3)
    train_lm.main(lm_argv(config, text, tmp_path / "lm", tmp_path / "ck"))
    nbest = tmp_path / "nbest"
    nbest.mkdir()
    rows = ["utt_id\trank\thyp\tam_score\tngram_score\twords\ttokens",
            "u1\t1\tthe red cat\t-1\t-2\t3\t9", "u1\t2\tthe big dog sat on the rug\t-2\t-3\t7\t20"]
    (nbest / "dev.tsv").write_text("\n".join(rows) + "\n")
    scores = {}
    for device in ("cpu", "cuda"):
        score_lm.main(["--lm", str(tmp_path / "lm"), "--nbest", str(nbest), "--outdir",
                       str(tmp_path / device), "--device", device])
        scores[device] = [float(line.split("\t")[2])
                          for line in (tmp_path / device / "dev.tsv").read_text().splitlines()[1:]]
    assert scores["cuda"] == pytest.approx(scores["cpu"], abs=1e-3)
