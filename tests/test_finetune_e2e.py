"""The smoke-sized pretrained experiment end to end through real snakemake: `model.encoder: hf`
over a tiny random wav2vec2, `lm.pretrained` a tiny GPT-2 with its own tokenizer and
`ngram.text` a .gz text file, all saved into a tmp folder (no download); waveform features chosen
automatically, then every downstream stage as in the smoke experiment (toy sizes, one run)."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest
import yaml

from conftest import ROOT
from test_e2e_smoke import STAGES, snakemake
from test_hf_encoder import tiny_encoder
from test_pretrained_lm import SENTENCES, build_tiny_lm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    folder = tiny_encoder(root / "tiny-w2v")
    lm = build_tiny_lm(root / "tiny-gpt2", SENTENCES)
    text = root / "extra.txt.gz"
    with gzip.open(text, "wt") as handle:
        handle.write("Alice Fixed Seven Cats!\n" * 5 + "bob lives in paris\n")
    controls = yaml.safe_load((ROOT / "config" / "experiments" / "smoke.yaml").read_text())["controls"]
    controls.update({"model": {"encoder": "hf", "pretrained": str(folder), "dropout": 0.1},
                     "train": {"max_steps": 20, "batch_frames": 600, "lr": 3e-3, "warmup_steps": 5,
                               "eval_every": 10, "checkpoint_every": 10, "encoder_lr_mult": 0.5,
                               "freeze_encoder_steps": 5},
                     "lm": {"pretrained": str(lm), "max_steps": 4, "batch_size": 8, "eval_every": 2},
                     "ngram": {"order": 2, "text": [str(text)]},
                     "decode.sweep.grid": {"lm_weight": [0.5], "word_score": [0.0]}})
    exp = root / "finetune.yaml"
    exp.write_text(yaml.safe_dump({"description": "tiny fine-tuning", "recipe": "default", "controls": controls}))
    results = root / "results"
    config = ["--config", f"experiment={exp}", f"results={results}"]
    proc = snakemake("--profile", "profiles/local", *config)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return results / "finetune", config, lm, text


def test_every_stage_ran_on_the_pretrained_encoder(finetuned):
    exp, *_ = finetuned
    summary = pd.read_csv(exp.parent / "summary.tsv", sep="\t")
    runs = summary[summary["aggregate"] == "run"]
    assert set(runs["stage"]) == STAGES and runs["test_wer"].notna().all()
    [features] = (exp / "features").iterdir()
    assert json.loads((features / "cmvn.json").read_text())["settings"] == {"type": "waveform"}
    [train] = (exp / "train").iterdir()
    summary = json.loads((train / "train.json").read_text())
    assert summary["steps"] == 20 and summary["pretrained"]["model_type"] == "wav2vec2"
    assert len(summary["pretrained"]["sha256"]) == 64


def test_the_pretrained_lm_and_the_lm_text_were_used(finetuned):
    exp, _, lm, text = finetuned
    [lm_json] = (exp / "lm").glob("*/lm.json")
    lm_json = json.loads(lm_json.read_text())
    assert lm_json["pretrained"] == str(lm) and lm_json["scorer"]["tokenizer"] == "pretrained"
    assert lm_json["steps"] == 4 and lm_json["best_step"] in (0, 2, 4)
    [ngram_json] = (exp / "ngram").glob("*/ngram.json")
    report = json.loads(ngram_json.read_text())["text"]
    assert report["files"] == [{"path": str(text), "sentences": 6, "eval_overlap": 0}]


def test_provenance_records_the_pretrained_folder(finetuned):
    exp, config, *_ = finetuned
    inputs = json.loads((exp / "runs" / "default" / "provenance.json").read_text())["inputs"]
    assert inputs["model.pretrained"]["path"].endswith("tiny-w2v") and len(inputs["model.pretrained"]["sha1"]) == 16
    proc = snakemake("-n", *config)
    assert "Nothing to be done" in proc.stdout + proc.stderr
