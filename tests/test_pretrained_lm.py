"""A pretrained causal LM (`lm.pretrained`) rescores: scored as it is (`lm.max_steps: 0`) or
fine-tuned (resumable, best by dev perplexity), its tokenizer's own ids, `lm.text_case`; plan
refuses a missing one. The smoke-sized snakemake run with it, `ngram.text` and an hf encoder is
tests/test_finetune_e2e.py.

The "pretrained" model is a tiny random GPT-2 with a byte-level BPE tokenizer, saved into a
temporary folder the way a downloaded model folder looks (no download anywhere)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from asrsweep.core.common import UserError
from asrsweep.experiment.sweep import load_experiment
from asrsweep.rescoring import causal_lm, score_lm, train_lm

SENTENCES = [f"the {a} {b} sat on the {c}" for a in ("red", "big", "old") for b in ("cat", "dog") for c in ("mat", "rug", "bed")]
ASRSWEEP = str(Path(sys.executable).with_name("asrsweep"))
# The acoustic model only has to exist here: a few steps of smoke.yaml's toy model.
FAST_TRAIN = {"max_steps": 6, "eval_every": 6, "checkpoint_every": 6, "warmup_steps": 2}
FINE = {"max_steps": 6, "batch_size": 4, "lr": 0.01, "warmup_steps": 2, "checkpoint_every": 2, "eval_every": 2}


def build_tiny_lm(folder: Path, texts: list[str]) -> Path:
    """A GPT-2 (2 layers, width 32) and its byte-level BPE tokenizer saved into `folder`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(fast), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id))
    fast.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    texts = SENTENCES + [s.upper() for s in SENTENCES] + [s.capitalize() for s in SENTENCES]
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-gpt2"), texts)


def files(tmp_path: Path, **lm) -> tuple[Path, Path]:
    """(config.json, lm.txt) of a train_lm job on the toy sentences."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"seed": 3, "lm": lm}))
    text = tmp_path / "lm.txt"
    text.write_text("\n".join(SENTENCES * 3) + "\n")
    return config, text


def train(config: Path, text: Path, out: Path, ckpt: Path, *extra: str) -> dict:
    return train_lm.main(["--config", str(config), "--text", str(text), "--outdir", str(out),
                          "--checkpoint-dir", str(ckpt), "--threads", "1", "--device", "cpu", *extra])


def nbest(tmp_path: Path, hyps: list[str]) -> Path:
    folder = tmp_path / "nbest"
    folder.mkdir(exist_ok=True)
    rows = ["utt_id\trank\thyp"] + [f"u{i}\t0\t{h}" for i, h in enumerate(hyps)]
    (folder / "dev.tsv").write_text("\n".join(rows) + "\n")
    return folder


def scores(tmp_path: Path, lm_dir: Path, hyps: list[str]) -> list[float]:
    out = tmp_path / f"scores-{lm_dir.name}"
    score_lm.main(["--lm", str(lm_dir), "--nbest", str(nbest(tmp_path, hyps)), "--outdir", str(out),
                   "--batch-size", "2", "--device", "cpu", "--threads", "1"])
    return [float(line.split("\t")[2]) for line in (out / "dev.tsv").read_text().splitlines()[1:]]


def direct_logprob(folder: Path, text: str) -> float:
    """log P(text eos | bos) computed straight from the folder with transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([[tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    return float(logp.gather(1, ids[0, 1:, None]).sum())


def test_max_steps_0_scores_with_the_pretrained_lm_as_it_is(tiny_lm, tmp_path):
    config, text = files(tmp_path, pretrained=str(tiny_lm), max_steps=0)
    lm_json = train(config, text, tmp_path / "lm", tmp_path / "ck")
    assert lm_json["steps"] == 0 and lm_json["best_step"] == 0 and math.isfinite(lm_json["dev_perplexity"])
    assert lm_json["scorer"] == {"model": str(tiny_lm.absolute()), "tokenizer": "pretrained", "text_case": "as_is"}
    assert not (tmp_path / "lm" / "hf").exists()  # nothing copied
    hyps = ["the red cat sat on the mat", "", "the old dog sat on the rug " * 12]  # the last one slides (> 64 tokens)
    got = scores(tmp_path, tmp_path / "lm", hyps)
    assert got[0] == pytest.approx(direct_logprob(tiny_lm, hyps[0]), abs=1e-4)
    assert got[1] == pytest.approx(direct_logprob(tiny_lm, ""), abs=1e-4)
    assert math.isfinite(got[2]) and got[2] < got[0]


def test_text_case_is_applied_to_the_hypotheses(tiny_lm, tmp_path):
    config, text = files(tmp_path, pretrained=str(tiny_lm), max_steps=0, text_case="upper")
    train(config, text, tmp_path / "lm", tmp_path / "ck")
    [got] = scores(tmp_path, tmp_path / "lm", ["the red cat"])
    assert got == pytest.approx(direct_logprob(tiny_lm, "THE RED CAT"), abs=1e-4)
    assert causal_lm.apply_case("the red cat", "sentence") == "The red cat"
    with pytest.raises(UserError, match="lm.text_case"):
        train_lm.LMConfig(text_case="title")


def test_fine_tuning_lowers_dev_perplexity_and_keeps_the_best(tiny_lm, tmp_path):
    config, text = files(tmp_path, pretrained=str(tiny_lm), **FINE)
    (tmp_path / "z").mkdir()
    as_is = train(*files(tmp_path / "z", pretrained=str(tiny_lm), max_steps=0), tmp_path / "z" / "lm", tmp_path / "z" / "ck")
    lm_json = train(config, text, tmp_path / "lm", tmp_path / "ck")
    log = [line.split("\t") for line in (tmp_path / "lm" / "train_log.tsv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in log] == [0, 2, 4, 6]  # step 0 = the model as it is
    ppl = {int(r[0]): float(r[4]) for r in log}
    assert ppl[0] == pytest.approx(as_is["dev_perplexity"])
    assert lm_json["best_step"] == min(ppl, key=ppl.get) and lm_json["dev_perplexity"] == min(ppl.values())
    assert lm_json["dev_perplexity"] < as_is["dev_perplexity"]
    assert lm_json["scorer"] == {"model": "hf", "tokenizer": "pretrained", "text_case": "as_is"}
    # hf/ holds the best model with its tokenizer: scoring from it is scoring that model
    [got] = scores(tmp_path, tmp_path / "lm", ["the big dog sat on the bed"])
    assert got == pytest.approx(direct_logprob(tmp_path / "lm" / "hf", "the big dog sat on the bed"), abs=1e-4)


def test_fine_tuning_resumes_exactly_after_sigterm(tiny_lm, tmp_path, monkeypatch):
    config, text = files(tmp_path, pretrained=str(tiny_lm), **FINE)
    straight = train(config, text, tmp_path / "a" / "lm", tmp_path / "a" / "ck")
    real = train_lm.train_step

    def step_then_signal(state, cfg):
        loss = real(state, cfg)
        if state["step"] + 1 == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    monkeypatch.setattr(train_lm, "train_step", step_then_signal)
    with pytest.raises(SystemExit) as stopped:
        train(config, text, tmp_path / "b" / "lm", tmp_path / "b" / "ck")
    assert stopped.value.code == 75
    monkeypatch.setattr(train_lm, "train_step", real)
    resumed = train(config, text, tmp_path / "b" / "lm", tmp_path / "b" / "ck")
    assert resumed["dev_loss"] == straight["dev_loss"] and resumed["best_step"] == straight["best_step"]
    wa = torch.load(tmp_path / "a" / "ck" / "ckpt-6.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "b" / "ck" / "ckpt-6.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_builtin_lm_keeps_the_best_step_by_dev_perplexity(tmp_path, monkeypatch):
    """A dev perplexity that rises after step 2 (forced): the step-2 weights are saved and named."""
    config, text = files(tmp_path, n_layer=1, n_head=2, n_embd=16, n_positions=16, vocab_size=60, **FINE)
    real = train_lm.dev_loss
    forced = iter([2.0, 3.0, 4.0])

    def rising(*args, **kwargs):
        real(*args, **kwargs)
        return next(forced)

    saved = {}
    real_eval = train_lm.evaluate

    def remember(state, cfg, loss):
        real_eval(state, cfg, loss)
        saved[state["step"]] = {k: v.clone() for k, v in state["model"].state_dict().items()}

    monkeypatch.setattr(train_lm, "dev_loss", rising)
    monkeypatch.setattr(train_lm, "evaluate", remember)
    lm_json = train(config, text, tmp_path / "lm", tmp_path / "ck")
    assert lm_json["best_step"] == 2 and lm_json["steps"] == 6
    assert lm_json["dev_perplexity"] == pytest.approx(math.exp(2.0))
    assert lm_json["last_dev_perplexity"] == pytest.approx(math.exp(4.0))
    from transformers import GPT2LMHeadModel

    kept = GPT2LMHeadModel.from_pretrained(tmp_path / "lm" / "hf").state_dict()
    assert all(torch.equal(kept[k], saved[2][k]) for k in saved[2] if k in kept)


def test_max_steps_0_needs_a_pretrained_lm():
    with pytest.raises(UserError, match="lm.max_steps"):
        train_lm.LMConfig(max_steps=0)


def test_plan_refuses_a_missing_pretrained_lm_in_one_line(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("controls: {lm.pretrained: nowhere/tiny-gpt2}\n")
    with pytest.raises(UserError, match="lm.pretrained"):
        load_experiment(exp)
    proc = subprocess.run([ASRSWEEP, "plan", str(exp), "--results", str(tmp_path / "r")], cwd=ROOT,
                          capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(lines) == 1 and "lm.pretrained" in lines[0] and "nowhere" in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_pretrained_folder_enters_the_lm_key(tiny_lm, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"controls: {{lm.pretrained: {tiny_lm}, lm.max_steps: 0}}\n")
    [with_lm] = load_experiment(exp).runs
    assert with_lm.inputs["lm.pretrained"]["files"] >= 3
    exp.write_text("controls: {}\n")
    [plain] = load_experiment(exp).runs
    assert plain.keys["lm"] != with_lm.keys["lm"] and plain.keys["ngram"] == with_lm.keys["ngram"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pretrained_lm_fine_tunes_and_scores_on_the_gpu(tiny_lm, tmp_path):
    config, text = files(tmp_path, pretrained=str(tiny_lm), **FINE)
    lm_json = train_lm.main(["--config", str(config), "--text", str(text), "--outdir", str(tmp_path / "lm"),
                             "--checkpoint-dir", str(tmp_path / "ck"), "--device", "cuda"])
    assert lm_json["device"] == "cuda" and math.isfinite(lm_json["dev_perplexity"])
    hyps = ["the red cat sat on the mat", "the old dog"]
    out = tmp_path / "gpu-scores"
    score_lm.main(["--lm", str(tmp_path / "lm"), "--nbest", str(nbest(tmp_path, hyps)), "--outdir", str(out),
                   "--device", "cuda"])
    got = [float(line.split("\t")[2]) for line in (out / "dev.tsv").read_text().splitlines()[1:]]
    assert got == pytest.approx(scores(tmp_path, tmp_path / "lm", hyps), abs=1e-2)  # CUDA kernels vs CPU
