"""Tests for asrsweep.acoustic.model: output shapes, padding invariance, save/load."""

from __future__ import annotations

import pytest
import torch

from asrsweep.acoustic.model import ModelConfig, build_model, count_params, load_model, subsampled_lengths

torch.set_num_threads(1)


@pytest.mark.parametrize("encoder", ["conformer", "transformer"])
@pytest.mark.parametrize("subsampling", [2, 4, 8])
def test_shapes(encoder, subsampling):
    torch.manual_seed(0)
    model = build_model(dict(n_mels=8, vocab_size=11, encoder=encoder, dim=16, layers=2, heads=2,
                             ff_mult=2, conv_kernel=5, subsampling=subsampling, dropout=0.0)).eval()
    feats, lengths = torch.randn(3, 37, 8), torch.tensor([37, 20, 9])
    logits, out_lengths = model(feats, lengths)
    expected = subsampled_lengths(lengths, subsampling)
    assert logits.shape == (3, int(expected[0]), 11)
    assert out_lengths.tolist() == expected.tolist() == [-(-n // subsampling) for n in (37, 20, 9)]


def test_padding_does_not_change_real_frames():
    torch.manual_seed(0)
    model = build_model(dict(n_mels=8, vocab_size=7, **{**ModelConfig().__dict__, "dim": 16, "heads": 2,
                                                          "layers": 2, "dropout": 0.0})).eval()
    x = torch.randn(1, 40, 8)
    alone, n = model(x, torch.tensor([40]))
    padded, _ = model(torch.cat([x, torch.randn(1, 24, 8)], 1), torch.tensor([40]))
    assert torch.allclose(alone[0], padded[0, : int(n)], atol=1e-5)


def test_save_and_load_roundtrip(tmp_path):
    model = build_model(dict(n_mels=8, vocab_size=5, **ModelConfig(dim=16, heads=2, layers=1).__dict__))
    torch.save({"model_args": model.args, "state_dict": model.state_dict(), "tokens": ["<blank>", "a", "b", "c", "d"],
                "step": 1, "dev_cer": 0.5, "n_params": count_params(model)}, tmp_path / "model.pt")
    loaded, tokens = load_model(tmp_path / "model.pt")
    assert not loaded.training and tokens[0] == "<blank>"
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_bad_config_and_file_are_user_errors(tmp_path):
    from asrsweep.core.common import UserError

    with pytest.raises(UserError, match="divisible"):
        ModelConfig(dim=10, heads=3)
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="cannot be read"):
        load_model(tmp_path / "bad.pt")
