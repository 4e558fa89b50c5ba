"""Tests for asrsweep.rescoring.train_lm (tiny run, kill + resume = straight run) and asrsweep.rescoring.score_lm."""

from __future__ import annotations

import json
import math
import signal

import pytest
import torch

from asrsweep.rescoring import score_lm

from asrsweep.rescoring import train_lm

SENTENCES = [f"the {a} {b} sat on the {c}" for a in ("red", "big", "old") for b in ("cat", "dog") for c in ("mat", "rug", "bed")]
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 16, "vocab_size": 60, "max_steps": 6,
        "batch_size": 4, "lr": 0.01, "warmup_steps": 2, "checkpoint_every": 3, "eval_every": 3, "dropout": 0.1}


def setup_files(tmp_path, **overrides) -> tuple:
    """(config path, text path) for a tiny run."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"seed": 3, "lm": {**TINY, **overrides}}))
    text = tmp_path / "lm.txt"
    text.write_text("\n".join(SENTENCES * 3) + "\n")
    return config, text


def argv(config, text, out, ckpt) -> list[str]:
    return ["--config", str(config), "--text", str(text), "--outdir", str(out), "--checkpoint-dir", str(ckpt)]


def test_tiny_run_and_kill_resume_identical(tmp_path, monkeypatch) -> None:
    config, text = setup_files(tmp_path)
    straight = train_lm.main(argv(config, text, tmp_path / "a", tmp_path / "ca"))
    assert straight["steps"] == 6 and math.isfinite(straight["dev_perplexity"])
    for name in ("lm.json", "train_log.tsv", "tokenizer.json", "hf/config.json", "command.sh"):
        assert (tmp_path / "a" / name).exists(), name
    # Kill after step 4 (a SIGTERM arriving mid-run), then rerun: it resumes from ckpt-4.
    monkeypatch.setattr(train_lm, "_interrupted", lambda step: signal.SIGTERM if step == 4 else None)
    with pytest.raises(SystemExit) as exc:
        train_lm.main(argv(config, text, tmp_path / "b", tmp_path / "cb"))
    assert exc.value.code == 128 + signal.SIGTERM
    assert (tmp_path / "cb" / "ckpt-4.pt").exists() and not (tmp_path / "b" / "lm.json").exists()
    monkeypatch.setattr(train_lm, "_interrupted", lambda step: None)
    resumed = train_lm.main(argv(config, text, tmp_path / "b", tmp_path / "cb"))
    assert resumed["dev_loss"] == straight["dev_loss"]
    assert (tmp_path / "a" / "train_log.tsv").read_text().splitlines()[1].split("\t")[:4] == \
        (tmp_path / "b" / "train_log.tsv").read_text().splitlines()[1].split("\t")[:4]
    wa = torch.load(tmp_path / "ca" / "ckpt-6.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "cb" / "ckpt-6.pt", weights_only=False)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_with_other_architecture_is_user_error(tmp_path, capsys) -> None:
    config, text = setup_files(tmp_path)
    train_lm.main(argv(config, text, tmp_path / "a", tmp_path / "c"))
    config2, _ = setup_files(tmp_path, n_embd=32)
    with pytest.raises(SystemExit) as exc:
        train_lm.main(argv(config2, text, tmp_path / "a", tmp_path / "c"))
    assert exc.value.code == 2 and "built with" in capsys.readouterr().err


def test_bpe_tokenizer_round_trip() -> None:
    tok = train_lm.train_tokenizer(SENTENCES, "bpe", 40)
    ids = train_lm.encode(tok, ["the red cat"], 32)[0]
    assert ids[0] == train_lm.BOS and ids[-1] == train_lm.EOS and len(ids) > 2


def test_windows_cover_every_token_once() -> None:
    ids = list(range(23))
    pieces = score_lm.windows(ids, 8)
    scored = [p[0][i] for p in pieces for i in range(p[1], len(p[0]))]
    assert scored == ids[1:] and all(len(p[0]) <= 8 for p in pieces)


def test_score_lm_matches_direct_computation(tmp_path) -> None:
    config, text = setup_files(tmp_path, max_steps=3)
    train_lm.main(argv(config, text, tmp_path / "lm", tmp_path / "c"))
    nbest = tmp_path / "nbest"
    nbest.mkdir()
    rows = ["utt_id\trank\thyp\tam_score\tngram_score\twords\ttokens", "u1\t0\tthe red cat\t-1\t-2\t3\tx",
            "u1\t1\t\t-5\t-1\t0\t", "u2\t0\tthe old dog sat on the mat\t-1\t-2\t7\tx"]
    (nbest / "dev.tsv").write_text("\n".join(rows) + "\n")
    score_lm.main(["--lm", str(tmp_path / "lm"), "--nbest", str(nbest), "--outdir", str(tmp_path / "s"),
                   "--batch-size", "2", "--device", "cpu"])
    got = [line.split("\t") for line in (tmp_path / "s" / "dev.tsv").read_text().splitlines()[1:]]
    model, tok, _ = score_lm.load_lm(tmp_path / "lm", "cpu")
    for (_, _, value), hyp in zip(got, ["the red cat", "", "the old dog sat on the mat"]):
        ids = torch.tensor([[score_lm.BOS] + tok.encode(hyp).ids + [score_lm.EOS]])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
        expect = float(logp.gather(1, ids[0, 1:, None]).sum())
        assert float(value) == pytest.approx(expect, abs=1e-4)
