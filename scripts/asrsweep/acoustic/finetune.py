"""Model construction and optimizer parameter groups for `asrsweep.acoustic.train` (not a step).

`new_model` builds the run's model (built-in encoder, or a pretrained `model.encoder: hf` with a
new CTC head) and applies the hf fine-tuning switches; `param_groups` splits the trainable
parameters into encoder and head groups (each with and without weight decay) whose learning
rates are train.lr times train.encoder_lr_mult / train.head_lr_mult.
"""

from __future__ import annotations

import dataclasses

import torch

from asrsweep.acoustic.model import ModelConfig, build_model
from asrsweep.core.common import UserError

HEAD_PREFIX = "head."  # the CTC output layer of every model (new for a pretrained encoder)


def new_model(model_cfg: ModelConfig, train_cfg, n_mels: int, vocab_size: int, seed: int):
    """(model, model_args, provenance or None) for a fresh run; weights drawn from `seed`."""
    waveform = n_mels == 1
    if waveform != (model_cfg.encoder == "hf"):
        need = "features.type waveform" if model_cfg.encoder == "hf" else "log-mel features"
        raise UserError(f"model.encoder {model_cfg.encoder} needs {need}; the features are "
                        f"{'waveforms' if waveform else 'log-mels'} (leave features.type auto)")
    torch.manual_seed(seed)  # weight init depends on the seed only
    if model_cfg.encoder != "hf":
        if train_cfg.freeze_encoder_steps:
            raise UserError("train.freeze_encoder_steps: applies to model.encoder hf (a pretrained encoder)")
        model_args = dict(n_mels=n_mels, vocab_size=vocab_size, **dataclasses.asdict(model_cfg))
        model = build_model(model_args)
        return model, model.args, None
    from asrsweep.acoustic.hf_encoder import pretrained_args

    model_args, encoder_weights, provenance = pretrained_args(model_cfg, vocab_size)
    model = build_model(model_args)
    model.encoder.load_state_dict(encoder_weights)
    if model_cfg.hf.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if model_cfg.hf.gradient_checkpointing:
        model.encoder.activation_checkpointing_enable({"use_reentrant": False})
    return model, model_args, provenance


def param_groups(model: torch.nn.Module, lr: float, weight_decay: float, encoder_mult: float,
                 head_mult: float) -> list[dict]:
    """AdamW groups of the trainable parameters: (encoder, head) x (matrices decayed, rest not)."""
    groups = []
    for part, mult in (("encoder", encoder_mult), ("head", head_mult)):
        params = [p for name, p in model.named_parameters()
                  if p.requires_grad and name.startswith(HEAD_PREFIX) == (part == "head")]
        for decayed in (True, False):
            chosen = [p for p in params if (p.ndim >= 2) == decayed]
            if chosen:
                groups.append({"params": chosen, "lr": lr * mult, "name": f"{part}{'' if decayed else '.no_decay'}",
                               "weight_decay": weight_decay if decayed else 0.0})
    return groups
