"""Pretrained transformers encoders (`model.encoder: hf`): tiny random models saved into a tmp
folder (no download), loaded by the real code; the fine-tuning settings reach the optimizer and
the model; a model folder or hub id that is not there is one line from `asrsweep plan`; resume is
exact on CPU."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asrsweep.acoustic.loader import read_batch
from asrsweep.core.common import UserError
from asrsweep.data.feature_store import FeatureStore, write_split
from test_train import TINY_TRAIN, assert_same_weights, fake_corpus, run_cli, weights

FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
HF_TRAIN = {**TINY_TRAIN, "batch_frames": 400, "specaugment": {}}


def tiny_encoder(folder: Path, family: str = "wav2vec2", **config) -> Path:
    """Save a random tiny `family` encoder + feature extractor into `folder`, as a download looks."""
    import transformers as T

    classes = {"wav2vec2": (T.Wav2Vec2Config, T.Wav2Vec2Model), "hubert": (T.HubertConfig, T.HubertModel),
               "wavlm": (T.WavLMConfig, T.WavLMModel),
               "data2vec-audio": (T.Data2VecAudioConfig, T.Data2VecAudioModel)}
    cfg_cls, model_cls = classes[family]
    torch.manual_seed(0)
    model_cls(cfg_cls(**{**TINY, **config})).save_pretrained(folder)
    T.Wav2Vec2FeatureExtractor(do_normalize=True, sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
    return folder


def wave_corpus(root: Path) -> dict:
    """fake_corpus's texts and tokenizer with waveform features [samples, 1] long enough for CTC."""
    corpus = fake_corpus(root, n_train=12, n_dev=4)
    gen = torch.Generator().manual_seed(1)
    for split in ("train", "dev", "test"):
        store = FeatureStore(corpus["features"], split)
        rows = [{"utt_id": u, "text": t, "speaker": s} for u, t, s in zip(store.utt_ids, store.texts, store.speakers)]
        for old in corpus["features"].glob(f"{split}-*.npy"):
            old.unlink()
        write_split(corpus["features"], split, rows,
                    [0.1 * torch.randn(3000 + 700 * len(t), 1, generator=gen) for t in store.texts], shard_mb=0.02)
    return corpus


def hf_model(folder: Path, **hf) -> dict:
    return {"encoder": "hf", "pretrained": str(folder), "dropout": 0.1, "hf": hf}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return root, wave_corpus(root / "corpus"), tiny_encoder(root / "w2v")


def trainer(setup, tmp_path, model: dict | None = None, **train):
    from asrsweep.acoustic.model import ModelConfig
    from asrsweep.acoustic.train import Trainer, TrainConfig, TrainPaths

    root, corpus, folder = setup
    paths = TrainPaths(corpus["features"], corpus["tokenizer"], tmp_path / "out", tmp_path / "ckpt")
    return Trainer(TrainConfig(**{**HF_TRAIN, **train}), ModelConfig(**(model or hf_model(folder))), 3, paths, threads=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_loads_with_a_new_ctc_head_and_its_own_lengths(family, tmp_path):
    from asrsweep.acoustic.hf_encoder import pretrained_args
    from asrsweep.acoustic.model import ModelConfig, build_model, load_model

    folder = tiny_encoder(tmp_path / family, family)
    args, encoder_weights, provenance = pretrained_args(ModelConfig(**hf_model(folder)), 11)
    model = build_model(args)
    model.encoder.load_state_dict(encoder_weights)
    model.eval()
    wave, lengths = torch.randn(2, 16000, 1), torch.tensor([16000, 8000])
    logits, out = model(wave, lengths)
    assert logits.shape == (2, 49, 11) and out.tolist() == [49, 24]
    assert out.tolist() == model.encoder._get_feat_extract_output_lengths(lengths).tolist()
    assert provenance["model_type"] == family and provenance["file"] == "model.safetensors"
    assert len(provenance["sha256"]) == 64
    torch.save({"model_args": args, "state_dict": model.state_dict(), "tokens": ["<blank>"] * 11},
               tmp_path / "model.pt")
    loaded, _ = load_model(tmp_path / "model.pt")  # rebuilt from the stored config, no folder needed
    assert torch.equal(loaded(wave, lengths)[0], logits)


def test_padding_does_not_change_an_utterance_of_a_layer_norm_model(tmp_path):
    """Layer-norm models take the padding mask; group-norm ones (wav2vec2-base) see padding, as in transformers."""
    from asrsweep.acoustic.hf_encoder import pretrained_args
    from asrsweep.acoustic.model import ModelConfig, build_model

    folder = tiny_encoder(tmp_path / "large", feat_extract_norm="layer", do_stable_layer_norm=True)
    args, encoder_weights, _ = pretrained_args(ModelConfig(**hf_model(folder)), 5)
    assert args["attention_mask"] and args["normalize"]
    model = build_model(args).eval()
    wave = torch.randn(1, 8000, 1)
    alone = model(wave, torch.tensor([8000]))[0]
    padded = model(torch.cat([wave, torch.zeros(1, 4000, 1)], 1), torch.tensor([8000]))[0][:, :alone.shape[1]]
    assert torch.allclose(alone, padded, atol=1e-4)


def test_encoder_settings_reach_the_transformers_config(setup):
    from asrsweep.acoustic.hf_encoder import pretrained_args
    from asrsweep.acoustic.model import ModelConfig

    cfg = ModelConfig(**hf_model(setup[2], mask_time_prob=0.3, mask_time_length=4, mask_feature_prob=0.2,
                                 mask_feature_length=3, layerdrop=0.25))
    config = pretrained_args(cfg, 5)[0]["hf_config"]
    assert (config["mask_time_prob"], config["mask_time_length"], config["mask_feature_prob"],
            config["mask_feature_length"], config["layerdrop"]) == (0.3, 4, 0.2, 3, 0.25)


def test_lr_multipliers_reach_the_param_groups_and_the_cnn_is_frozen(setup, tmp_path):
    t = trainer(setup, tmp_path, encoder_lr_mult=0.1, head_lr_mult=3.0)
    lrs = {g["name"]: g["initial_lr"] for g in t.opt.param_groups}
    assert lrs == pytest.approx({"encoder": 0.1 * HF_TRAIN["lr"], "encoder.no_decay": 0.1 * HF_TRAIN["lr"],
                                 "head": 3 * HF_TRAIN["lr"], "head.no_decay": 3 * HF_TRAIN["lr"]})
    in_opt = {id(p) for g in t.opt.param_groups for p in g["params"]}
    cnn = list(t.model.encoder.feature_extractor.parameters())
    assert cnn and not any(id(p) in in_opt for p in cnn)
    unfrozen = trainer(setup, tmp_path / "u", hf_model(setup[2], freeze_feature_encoder=False))
    in_opt = {id(p) for g in unfrozen.opt.param_groups for p in g["params"]}
    assert all(id(p) in in_opt for p in unfrozen.model.encoder.feature_extractor.parameters())


def test_gradient_checkpointing_is_switched_on_and_trains(setup, tmp_path):
    t = trainer(setup, tmp_path, hf_model(setup[2], gradient_checkpointing=True))
    assert t.model.encoder.is_activation_checkpointing
    assert t.train_step(read_batch(t.train["feats"], t.train["targets"], [0, 1])) > 0
    assert not trainer(setup, tmp_path / "off").model.encoder.is_activation_checkpointing


def test_bf16_autocast_trains_the_hf_encoder(setup, tmp_path):
    """train.precision bf16 (the GPU default under auto) through the HF encoder; here on CPU autocast."""
    t = trainer(setup, tmp_path, precision="bf16")
    assert t.dtype == torch.bfloat16
    assert 0 < t.train_step(read_batch(t.train["feats"], t.train["targets"], [0, 1])) < float("inf")
    assert t.evaluate()[0] > 0


def test_freeze_encoder_steps_train_the_head_only_then_everything(setup, tmp_path):
    t = trainer(setup, tmp_path, freeze_encoder_steps=2, max_steps=3, warmup_steps=0)
    snapshot = lambda part: {k: v.clone() for k, v in getattr(t.model, part).state_dict().items()}  # noqa: E731
    encoder0, head0 = snapshot("encoder"), snapshot("head")
    batch = read_batch(t.train["feats"], t.train["targets"], [0, 1])
    for _ in range(2):
        t.train_step(batch)
        t.progress.step += 1
    assert_same_weights(snapshot("encoder"), encoder0)
    assert not torch.equal(snapshot("head")["weight"], head0["weight"])
    t.train_step(batch)
    changed = [k for k, v in snapshot("encoder").items() if not torch.equal(v, encoder0[k])]
    assert any(k.startswith("encoder.layers") for k in changed)
    assert not any(k.startswith("feature_extractor") for k in changed)  # frozen CNN stays put


def test_built_in_encoder_refuses_freeze_steps(setup, tmp_path):
    root = tmp_path / "logmel"
    corpus = fake_corpus(root)
    from asrsweep.acoustic.model import ModelConfig
    from asrsweep.acoustic.train import Trainer, TrainConfig, TrainPaths
    from test_train import TINY_MODEL

    paths = TrainPaths(corpus["features"], corpus["tokenizer"], root / "out", root / "ckpt")
    with pytest.raises(UserError, match="freeze_encoder_steps"):
        Trainer(TrainConfig(**{**TINY_TRAIN, "freeze_encoder_steps": 2}), ModelConfig(**TINY_MODEL), 1, paths)
    with pytest.raises(UserError, match="features.type waveform"):  # log-mel features for an hf encoder
        Trainer(TrainConfig(**HF_TRAIN), ModelConfig(**hf_model(setup[2])), 1, paths)


def test_resume_after_sigterm_is_exact_with_an_hf_encoder(setup, tmp_path):
    from test_resume import start_and_signal

    root, corpus, folder = setup
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"seed": 2, "model": hf_model(folder, mask_time_prob=0.2, mask_time_length=2,
                                                               layerdrop=0.3),
                                  "train": {**HF_TRAIN, "max_steps": 8, "eval_every": 4, "checkpoint_every": 1,
                                            "keep_checkpoints": 3, "freeze_encoder_steps": 2}}))
    argv = lambda run: ["--config", str(config), "--features", str(corpus["features"]),  # noqa: E731
                        "--tokenizer", str(corpus["tokenizer"]), "--outdir", str(run / "out"),
                        "--checkpoint-dir", str(run / "ckpt"), "--threads", "1"]
    assert run_cli(argv(tmp_path / "straight")).returncode == 0
    code = start_and_signal(argv(tmp_path / "cut"), tmp_path / "cut" / "ckpt" / "ckpt-3.pt", signal.SIGTERM)
    assert code == 75
    result = run_cli(argv(tmp_path / "cut"))
    assert result.returncode == 0 and "resumed from" in result.stderr, result.stderr
    for name in ("straight", "cut"):
        assert (tmp_path / name / "out" / "train.json").is_file()
    assert_same_weights(weights(tmp_path / "cut" / "ckpt" / "ckpt-8.pt", "model"),
                        weights(tmp_path / "straight" / "ckpt" / "ckpt-8.pt", "model"))
    summary = json.loads((tmp_path / "straight" / "out" / "train.json").read_text())
    assert summary["pretrained"]["model_type"] == "wav2vec2" and len(summary["pretrained"]["sha256"]) == 64
    model_pt = str(tmp_path / "straight" / "out" / "model.pt")  # fork it under other masking settings
    fork = trainer(setup, tmp_path / "fork", hf_model(folder, layerdrop=0.0, mask_time_prob=0.0), init_from=model_pt)
    forked = weights(tmp_path / "straight" / "out" / "model.pt", "state_dict")
    forked.pop("encoder.masked_spec_embed")  # built by transformers only while masking is on
    assert_same_weights(fork.model.state_dict(), forked)


def test_whisper_and_unknown_models_are_refused_in_one_line(tmp_path):
    from asrsweep.core.pretrained import resolve_encoder

    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "config.json").write_text('{"model_type": "whisper"}')
    with pytest.raises(UserError, match="3000 mel frames"):
        resolve_encoder(str(tmp_path / "whisper"), "model.pretrained", "exp")
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(UserError, match="model type gpt2 is not supported"):
        resolve_encoder(str(tmp_path / "gpt2"), "model.pretrained", "exp")


def test_a_hub_id_resolves_from_the_cache_only(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from asrsweep.core.pretrained import resolve

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("ASRSWEEP_HUB_ONLINE", raising=False)
    with pytest.raises(UserError, match="not in the Hugging Face cache.*ASRSWEEP_HUB_ONLINE=1"):
        resolve("someone/tiny-w2v", "model.pretrained", "exp")
    monkeypatch.setenv("ASRSWEEP_HUB_ONLINE", "1")
    with pytest.raises(UserError, match="not in the Hugging Face cache"):  # a job never downloads
        resolve("someone/tiny-w2v", "model.pretrained", "exp", download=False)
    monkeypatch.delenv("ASRSWEEP_HUB_ONLINE")
    repo = tmp_path / "models--someone--tiny-w2v"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    tiny_encoder(repo / "snapshots" / ("a" * 40))
    assert resolve("someone/tiny-w2v", "model.pretrained", "exp") == repo / "snapshots" / ("a" * 40)


def experiment(tmp_path: Path, pretrained: str, **controls) -> Path:
    path = tmp_path / "exp.yaml"
    extra = "".join(f", {k}: {v}" for k, v in controls.items())
    path.write_text(f"controls: {{model.encoder: hf, model.pretrained: {pretrained}{extra}}}\n")
    return path


def test_plan_refuses_a_missing_model_in_one_line(tmp_path):
    exp = experiment(tmp_path, "nowhere/models/w2v")
    proc = subprocess.run([str(Path(sys.executable).with_name("asrsweep")), "plan", str(exp), "--results",
                           str(tmp_path / "r")], capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(lines) == 1 and "model.pretrained" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_expansion_resolves_waveform_features_and_fingerprints_the_weights(setup, tmp_path):
    from asrsweep.experiment.sweep import load_experiment

    folder = tiny_encoder(tmp_path / "w2v")
    [run] = load_experiment(experiment(tmp_path, str(folder))).runs
    assert run.config["features"]["type"] == "waveform" and "model.pretrained" in run.inputs
    exp_default = tmp_path / "d.yaml"
    exp_default.write_text("controls: {}\n")
    assert load_experiment(exp_default).runs[0].config["features"]["type"] == "logmel"
    weights_file = folder / "model.safetensors"
    weights_file.write_bytes(weights_file.read_bytes() + b" ")  # other weights: train again
    [again] = load_experiment(experiment(tmp_path, str(folder))).runs
    assert again.keys["train"] != run.keys["train"] and again.keys["features"] == run.keys["features"]
    with pytest.raises(UserError, match="features.type: logmel does not suit model.encoder hf"):
        load_experiment(experiment(tmp_path, str(folder), **{"features.type": "logmel"}))


def test_waveform_features_store_the_samples(tmp_path):
    import numpy as np
    import soundfile as sf

    from asrsweep.data.compute_features import run as compute_features

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "dev", "test"):
        rows = ["utt_id\taudio\ttext\tspeaker\tduration"]
        for i in range(2):
            wav = tmp_path / f"{split}{i}.wav"
            sf.write(wav, (0.1 * rng.standard_normal(1600 * (i + 1))).astype(np.float32), 16000, subtype="FLOAT")
            rows.append(f"{split}{i}\t{wav}\tyes\ts\t0.1")
        (data / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"features": {"type": "waveform"}}))
    compute_features(["--config", str(config), "--data", str(data), "--outdir", str(tmp_path / "f")])
    store = FeatureStore(tmp_path / "f", "train")
    expected, _ = sf.read(tmp_path / "train1.wav", dtype="float32")
    assert store[1].shape == (3200, 1) and store[1].dtype == torch.float32
    assert torch.equal(store[1][:, 0], torch.from_numpy(expected))
    config.write_text(json.dumps({"features": {"type": "auto", "n_mels": 8}}))  # unresolved: log-mels
    compute_features(["--config", str(config), "--data", str(data), "--outdir", str(tmp_path / "g")])
    assert FeatureStore(tmp_path / "g", "train")[1].shape[1] == 8
    config.write_text(json.dumps({"features": {"type": "mfcc"}}))
    with pytest.raises(UserError, match="features.type"):
        compute_features(["--config", str(config), "--data", str(data), "--outdir", str(tmp_path / "h")])


def test_waveform_features_key_ignores_mel_settings(tmp_path):
    """Waveforms are samples as they are: changing features.n_mels must not recompute them."""
    from asrsweep.experiment.sweep import load_experiment

    model = tiny_encoder(tmp_path / "model")

    def features_key(n_mels: int) -> str:
        exp = tmp_path / f"exp{n_mels}.yaml"
        exp.write_text(f"controls: {{features.n_mels: {n_mels}, model.encoder: hf, model.pretrained: {model}}}\n")
        return load_experiment(exp).runs[0].keys["features"]

    assert features_key(40) == features_key(80)
