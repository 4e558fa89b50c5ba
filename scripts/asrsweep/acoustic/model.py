"""CTC acoustic model: Conv1d subsampling + Conformer/Transformer encoder + linear (not a step),
or a pretrained transformers encoder with a new CTC head (`model.encoder: hf`, in `hf_encoder`).

`build_model(model_args)` builds either, `load_model(<R/E/train/k>/model.pt) -> (model, tokens)`
reloads a trained one. Shapes: feats [batch, frames, n_mels] -> logits [batch, frames', vocab]
with frames' = ceil(frames / subsampling) (each stride-2 conv halves, rounding up). Both models
have `output_lengths` (CTC frames of input lengths) and `batch_lengths` (what
train.batch_frames counts: input frames here, encoder frames for waveform input).
"""


import dataclasses
import math

import torch
from torch import nn
import torch.nn.functional as F

from asrsweep.core.common import UserError

ENCODERS = ("conformer", "transformer", "hf")


@dataclasses.dataclass(frozen=True)
class HFSettings:
    """Section `model.hf`: the pretrained encoder's own SpecAugment and layer drop (encoder hf)."""

    mask_time_prob: float = 0.05  # share of encoder frames that start a masked span
    mask_time_length: int = 10  # frames per time mask
    mask_feature_prob: float = 0.0  # share of hidden channels that start a masked span
    mask_feature_length: int = 10  # channels per feature mask
    layerdrop: float = 0.05  # probability of skipping a transformer layer in training
    freeze_feature_encoder: bool = True  # keep the CNN feature encoder's pretrained weights
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% slower


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Section `model` of the recipe (n_mels and vocab_size come from the artifacts)."""

    encoder: str = "conformer"  # conformer | transformer | hf
    pretrained: str | None = None  # encoder hf: a transformers folder or a cached hub id
    hf: HFSettings = dataclasses.field(default_factory=HFSettings)
    dim: int = 144  # model width
    layers: int = 4  # encoder blocks
    heads: int = 4  # attention heads (dim % heads == 0)
    ff_mult: int = 4  # feed-forward hidden = ff_mult * dim
    conv_kernel: int = 15  # Conformer depthwise conv kernel (odd)
    subsampling: int = 4  # time reduction: 2, 4 or 8 (stride-2 Conv1d layers)
    dropout: float = 0.1  # dropout in every block

    def __post_init__(self):
        if isinstance(self.hf, dict):
            object.__setattr__(self, "hf", HFSettings(**self.hf))
        if self.encoder == "hf" and not self.pretrained:
            raise UserError("model.pretrained: model.encoder hf needs a model folder or a cached hub id")
        if self.encoder not in ENCODERS:
            raise UserError(f"model.encoder: '{self.encoder}' is not one of {', '.join(ENCODERS)}")
        if self.dim % self.heads:
            raise UserError(f"model.dim: {self.dim} is not divisible by model.heads {self.heads}")
        if self.subsampling not in (2, 4, 8):
            raise UserError(f"model.subsampling: {self.subsampling}; use 2, 4 or 8")
        if self.conv_kernel % 2 == 0:
            raise UserError(f"model.conv_kernel: {self.conv_kernel}; use an odd number")


def subsampled_lengths(lengths: torch.Tensor, subsampling: int) -> torch.Tensor:
    """Output frames [batch] after log2(subsampling) stride-2 convs (kernel 3, padding 1)."""
    for _ in range(int(math.log2(subsampling))):
        lengths = (lengths + 1) // 2
    return lengths


class Subsampling(nn.Module):
    """Stride-2 Conv1d stack: [B, T, n_mels] -> [B, ceil(T / factor), dim] (Conv1d, not 2d: ~10x faster on CPU)."""

    def __init__(self, n_mels: int, dim: int, factor: int):
        super().__init__()
        chans = [n_mels] + [dim] * int(math.log2(factor))
        self.convs = nn.ModuleList(nn.Conv1d(a, b, 3, stride=2, padding=1) for a, b in zip(chans, chans[1:]))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, T, n_mels], lengths [B] -> ([B, T', dim], lengths [B]); padding zeroed at every
        resolution, so the batch it sits in cannot change an utterance's output."""
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = x * (torch.arange(x.shape[2], device=x.device)[None, :] < lengths[:, None])[:, None, :]
            x = F.gelu(conv(x))
            lengths = (lengths + 1) // 2
        return x.transpose(1, 2), lengths


def sinusoids(length: int, dim: int, device) -> torch.Tensor:
    """Absolute sinusoidal position table [length, dim]."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class FeedForward(nn.Module):
    """Pre-norm feed-forward: [B, T, dim] -> [B, T, dim] (residual added by the caller)."""

    def __init__(self, dim: int, mult: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, mult * dim), nn.SiLU(), nn.Dropout(dropout),
            nn.Linear(mult * dim, dim), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfAttention(nn.Module):
    """Pre-norm multi-head self-attention over valid frames: [B, T, dim] -> [B, T, dim]."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.heads, self.dropout = heads, dropout
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """`attn_mask` [B, 1, 1, T] bool, True = a real frame that may be attended to."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)
        return self.drop(self.out(y.transpose(1, 2).reshape(b, t, d)))


class ConvModule(nn.Module):
    """Conformer conv module (LayerNorm instead of BatchNorm: padding-safe, DDP-safe): [B, T, dim] -> same."""

    def __init__(self, dim: int, kernel: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.mid_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """`pad` [B, T, 1] bool, True on padding (zeroed so it cannot leak into real frames)."""
        y = F.glu(self.pointwise_in(self.norm(x).transpose(1, 2)), dim=1)
        y = self.depthwise(y.masked_fill(pad.transpose(1, 2), 0.0)).transpose(1, 2)
        y = F.silu(self.mid_norm(y)).transpose(1, 2)
        return self.drop(self.pointwise_out(y).transpose(1, 2))


class Block(nn.Module):
    """One encoder block: Conformer (FF/2, MHSA, conv, FF/2, norm) or pre-norm Transformer (MHSA, FF)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.conformer = cfg.encoder == "conformer"
        self.ff2 = FeedForward(cfg.dim, cfg.ff_mult, cfg.dropout)
        self.attn = SelfAttention(cfg.dim, cfg.heads, cfg.dropout)
        if self.conformer:
            self.ff1 = FeedForward(cfg.dim, cfg.ff_mult, cfg.dropout)
            self.conv = ConvModule(cfg.dim, cfg.conv_kernel, cfg.dropout)
            self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        if not self.conformer:
            x = x + self.attn(x, attn_mask)
            return x + self.ff2(x)
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x, attn_mask)
        x = x + self.conv(x, pad)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class CTCModel(nn.Module):
    """feats [B, T, n_mels] + lengths [B] -> (logits [B, T', vocab], out_lengths [B])."""

    def __init__(self, n_mels: int, vocab_size: int, **model_cfg):
        super().__init__()
        cfg = ModelConfig(**model_cfg)
        self.args = dict(n_mels=n_mels, vocab_size=vocab_size, **builtin_args(cfg))
        self.subsampling = cfg.subsampling
        self.frontend = Subsampling(n_mels, cfg.dim, cfg.subsampling)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, vocab_size)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, out_lengths = self.frontend(feats, lengths)
        t = x.shape[1]
        valid = torch.arange(t, device=x.device)[None, :] < out_lengths[:, None]  # [B, T']
        x = self.drop(x * math.sqrt(x.shape[-1]) + sinusoids(t, x.shape[-1], x.device))
        attn_mask, pad = valid[:, None, None, :], ~valid[:, :, None]
        for block in self.blocks:
            x = block(x, attn_mask, pad)
        return self.head(self.final_norm(x)), out_lengths

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """CTC frames [B] of `lengths` input frames [B]."""
        return subsampled_lengths(lengths, self.subsampling)

    def batch_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """What train.batch_frames counts: input frames."""
        return lengths


def builtin_args(cfg: ModelConfig) -> dict:
    """Section `model` as the built-in encoders read it (the hf settings are not theirs)."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("pretrained", "hf")}


def build_model(model_args: dict) -> nn.Module:
    """A fresh model from `model_args` ({n_mels, vocab_size, **section model}, or HF's, see hf_encoder)."""
    if model_args.get("encoder") == "hf":
        from asrsweep.acoustic.hf_encoder import HFEncoderCTC

        return HFEncoderCTC(**model_args)
    return CTCModel(**model_args)


def architecture(model_args: dict) -> dict:
    """What two model_args must share for weights to move between them (dropout etc. may differ)."""
    if model_args.get("encoder") == "hf":
        from asrsweep.acoustic.hf_encoder import architecture as hf_architecture

        return hf_architecture(model_args)
    return {k: v for k, v in model_args.items() if k != "dropout"}


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_model(path) -> tuple[nn.Module, list[str]]:
    """Load `model.pt` -> (model in eval mode on CPU, tokens list with `<blank>` at 0)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; run asrsweep.acoustic.train first") from None
    except Exception as err:  # a truncated or foreign file: say which one
        raise UserError(f"{path}: cannot be read as a model ({type(err).__name__}: {err})") from None
    if not isinstance(blob, dict) or not {"model_args", "state_dict", "tokens"} <= set(blob):
        raise UserError(f"{path}: not an asrsweep model.pt (needs model_args, state_dict, tokens)")
    model = build_model(blob["model_args"])
    model.load_state_dict(blob["state_dict"])
    return model.eval(), list(blob["tokens"])
