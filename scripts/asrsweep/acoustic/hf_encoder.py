"""A pretrained transformers speech encoder with a new CTC head (`model.encoder: hf`; not a step).

`pretrained_args(cfg, vocab_size)` loads `model.pretrained` (a folder, or a hub id from the local
cache: `asrsweep.core.pretrained`) and returns the model arguments plus its weights;
`HFEncoderCTC(**args)` rebuilds the architecture from the stored config alone, so a trained
model.pt needs no pretrained folder. Shapes: waveform [batch, samples, 1] (features.type
waveform) -> logits [batch, frames', vocab], frames' from the model's own
`_get_feat_extract_output_lengths` (stride 320 for wav2vec2: 1 s -> 49 frames).

The input is normalised inside the model as the checkpoint's feature extractor says
(preprocessor_config.json: `do_normalize` = zero mean, unit variance per utterance over its real
samples; `return_attention_mask` = pass the padding mask; group-norm models such as
wav2vec2-base were pretrained without one, so padding is zeros and no mask is passed).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from torch import nn

from asrsweep.core.common import UserError, file_digest
from asrsweep.core.pretrained import offline_by_default, resolve_encoder

# HF config keys that regularise training (set from section model.hf), not the architecture:
# a fork may change them, and they are left out when two architectures are compared.
REGULARISATION = ("mask_time_prob", "mask_time_length", "mask_feature_prob", "mask_feature_length",
                  "layerdrop", "apply_spec_augment")
# Config keys that describe where or with what the folder was written, not the model.
VOLATILE = ("_name_or_path", "transformers_version", "architectures", "dtype", "torch_dtype")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _auto():
    offline_by_default()
    import transformers

    transformers.utils.logging.disable_progress_bar()  # job logs, not terminals
    return transformers


def feature_extractor_settings(folder: Path, hf_config: dict) -> dict:
    """{"normalize", "attention_mask"} from preprocessor_config.json (defaults as transformers')."""
    path = folder / "preprocessor_config.json"
    prep = json.loads(path.read_text()) if path.is_file() else {}
    rate = prep.get("sampling_rate", 16000)
    if rate != 16000:
        raise UserError(f"model.pretrained: {folder}: sampling_rate {rate}; asrsweep features are 16 kHz")
    layer_norm = hf_config.get("feat_extract_norm", "group") == "layer"
    return {"normalize": bool(prep.get("do_normalize", True)),
            "attention_mask": bool(prep.get("return_attention_mask", layer_norm))}


def weights_sha256(folder: Path) -> dict:
    """{"file", "sha256"} of the folder's weights file (provenance: which weights were fine-tuned)."""
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            return {"file": name, "sha256": file_digest(path, "sha256")}
    raise UserError(f"model.pretrained: {folder}: no weights file ({' or '.join(WEIGHT_FILES)})")


def pretrained_args(cfg, vocab_size: int) -> tuple[dict, dict, dict]:
    """(model_args, encoder state_dict, provenance) of `cfg` (a ModelConfig with encoder 'hf').

    The encoder's own SpecAugment and layer drop come from `cfg.hf` and override the checkpoint's.
    """
    folder = resolve_encoder(cfg.pretrained, "model.pretrained", "model", download=False)  # plan fetched it
    overrides = dict(mask_time_prob=cfg.hf.mask_time_prob, mask_time_length=cfg.hf.mask_time_length,
                     mask_feature_prob=cfg.hf.mask_feature_prob, mask_feature_length=cfg.hf.mask_feature_length,
                     layerdrop=cfg.hf.layerdrop,
                     apply_spec_augment=cfg.hf.mask_time_prob > 0 or cfg.hf.mask_feature_prob > 0)
    transformers = _auto()
    config = transformers.AutoConfig.from_pretrained(folder)
    for key, value in overrides.items():
        if key != "apply_spec_augment" or hasattr(config, key):  # data2vec-audio has no such switch
            setattr(config, key, value)
    encoder = transformers.AutoModel.from_pretrained(folder, config=config, dtype=torch.float32)
    hf_config = {k: v for k, v in encoder.config.to_dict().items() if k not in VOLATILE}
    args = dict(encoder="hf", vocab_size=vocab_size, n_mels=1, pretrained=cfg.pretrained, dropout=cfg.dropout,
                hf_config=hf_config, **feature_extractor_settings(folder, hf_config))
    provenance = {"name": cfg.pretrained, "folder": str(folder), "model_type": hf_config["model_type"],
                  **weights_sha256(folder)}
    return args, encoder.state_dict(), provenance


class HFEncoderCTC(nn.Module):
    """waveform [B, S, 1] + lengths [B] (samples) -> (logits [B, T', vocab], out_lengths [B])."""

    def __init__(self, vocab_size: int, hf_config: dict, normalize: bool, attention_mask: bool,
                 dropout: float, pretrained: str, encoder: str = "hf", n_mels: int = 1):
        super().__init__()
        self.args = dict(encoder=encoder, vocab_size=vocab_size, n_mels=n_mels, pretrained=pretrained,
                         dropout=dropout, hf_config=hf_config, normalize=normalize, attention_mask=attention_mask)
        transformers = _auto()
        config = transformers.AutoConfig.for_model(**hf_config)
        self.encoder = transformers.AutoModel.from_config(config)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(config.hidden_size, vocab_size)
        self.normalize, self.use_mask = normalize, attention_mask
        self.frozen = False  # True: the encoder runs without gradients (train.freeze_encoder_steps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """transformers builds `masked_spec_embed` only while masking is on: a fork across
        model.hf masking settings drops it, or keeps this model's own, instead of failing."""
        key, mine = prefix + "encoder.masked_spec_embed", getattr(self.encoder, "masked_spec_embed", None)
        if mine is None:
            state_dict.pop(key, None)
        elif key not in state_dict:
            state_dict[key] = mine.detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Encoder frames [B] of `lengths` samples [B]."""
        return self.encoder._get_feat_extract_output_lengths(lengths).long()

    batch_lengths = output_lengths  # train.batch_frames counts encoder frames for waveform input

    def freeze_feature_encoder(self) -> None:
        """The CNN feature encoder keeps its pretrained weights (requires_grad off)."""
        for p in self.encoder.feature_extractor.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wave = x[..., 0]  # [B, S]
        valid = torch.arange(wave.shape[1], device=wave.device)[None, :] < lengths[:, None]
        if self.normalize:  # as Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm, padding back to 0
            n = lengths[:, None].clamp(min=1).to(wave.dtype)
            mean = (wave * valid).sum(1, keepdim=True) / n
            var = ((wave - mean).pow(2) * valid).sum(1, keepdim=True) / n
            wave = (wave - mean) / torch.sqrt(var + 1e-7) * valid
        mask = valid.long() if self.use_mask else None
        with torch.no_grad() if self.frozen else contextlib.nullcontext():
            hidden = self.encoder(wave, attention_mask=mask).last_hidden_state  # [B, T', hidden]
        return self.head(self.drop(hidden)), self.output_lengths(lengths)


def architecture(args: dict) -> dict:
    """What two HF model_args must share for weights to move between them (fork)."""
    config = {k: v for k, v in args["hf_config"].items() if k not in REGULARISATION and "dropout" not in k}
    return {"encoder": args["encoder"], "vocab_size": args["vocab_size"], "hf_config": config}
