"""Length-bucketed batches by total frames, padding and SpecAugment for `asrsweep.acoustic.train` (not a step).

Batches are a pure function of (lengths, batch_frames, seed, epoch), so a resumed run rebuilds the
same epoch and skips to the checkpointed index; SpecAugment draws from a generator seeded by
(seed, step, rank), so it never depends on state that a checkpoint could miss. Under DDP the
batches are global (cut at world x the per-rank budget) and every rank trains on its share of each
(`rank_share`): the same global batch order as one process with the same global batch.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

BUCKET_BATCHES = 50  # sort within windows of ~50 batches: little padding, still shuffled


def epoch_batches(lengths: list[int], batch_frames: int, seed: int, epoch: int,
                  min_size: int = 1) -> list[list[int]]:
    """Index batches for one epoch, each with padded size (n * longest) <= batch_frames.

    Shuffle, sort by length inside windows, cut greedily, shuffle the batch order. Each batch is
    in length order and holds at least `min_size` utterances (DDP: one per rank), even when that
    overruns `batch_frames` (a single utterance longer than the budget is a batch of its own).
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    mean = max(1.0, float(np.mean(lengths))) if lengths else 1.0
    window = max(1, int(BUCKET_BATCHES * batch_frames / mean))
    batches, current, longest = [], [], 0
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: (lengths[i], i))
        for i in chunk:
            grown = max(longest, lengths[i])
            if len(current) >= min_size and grown * (len(current) + 1) > batch_frames:
                batches.append(current)
                current, grown = [], lengths[i]
            current.append(int(i))
            longest = grown
    if len(current) >= min_size or (current and not batches):
        batches.append(current)
    elif current:  # too few left for every rank: they join the last batch
        batches[-1] = sorted(batches[-1] + current, key=lambda i: (lengths[i], i))
    return [batches[j] for j in rng.permutation(len(batches))]


def rank_share(batch: list[int], rank: int, world: int) -> list[int]:
    """Rank `rank`'s utterances of a global batch (in length order): every world-th one, so the
    ranks pad to about the same length and together hold the batch exactly once."""
    return batch[rank::world]


def pad_batch(feats, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack utterances `idx` of `feats` (each [frames, n_mels]) -> ([B, T, n_mels] float32, lengths [B]).

    `feats` is a list or a lazily read feature store: only the utterances `idx` are read.
    """
    chosen = [feats[i] for i in idx]
    lengths = torch.tensor([f.shape[0] for f in chosen], dtype=torch.long)
    out = torch.zeros(len(chosen), int(lengths.max()), chosen[0].shape[1], dtype=torch.float32)
    for row, f in enumerate(chosen):
        out[row, : f.shape[0]] = f.float()
    return out, lengths


def pad_targets(targets: list[list[int]], idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenated CTC targets [sum(lengths)] and their lengths [B] for utterances `idx`."""
    chosen = [targets[i] for i in idx]
    flat = torch.tensor([t for seq in chosen for t in seq], dtype=torch.long)
    return flat, torch.tensor([len(seq) for seq in chosen], dtype=torch.long)


@dataclasses.dataclass(frozen=True)
class SpecAugmentConfig:
    """Section `train.specaugment` (0 masks = off). Masked values become 0 (the normalised mean)."""

    freq_masks: int = 2  # frequency masks per utterance
    freq_width: int = 10  # max mel bins per frequency mask
    time_masks: int = 2  # time masks per utterance
    time_width: int = 20  # max frames per time mask (also at most 20% of the utterance)


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig,
                 gen: torch.Generator) -> torch.Tensor:
    """Mask random mel bands and time spans of x [B, T, F]; returns a masked copy [B, T, F]."""
    b, t, f = x.shape
    keep = torch.ones(b, t, f, dtype=torch.bool)
    bins, frames = torch.arange(f)[None, :], torch.arange(t)[None, :]
    for _ in range(cfg.freq_masks):
        width = (torch.rand(b, generator=gen) * (cfg.freq_width + 1)).long()
        start = (torch.rand(b, generator=gen) * (f - width + 1)).long()
        band = (bins >= start[:, None]) & (bins < (start + width)[:, None])  # [B, F]
        keep &= ~band[:, None, :]
    max_width = torch.minimum(torch.full((b,), cfg.time_width), (lengths.float() * 0.2).long())
    for _ in range(cfg.time_masks):
        width = (torch.rand(b, generator=gen) * (max_width + 1)).long()
        start = (torch.rand(b, generator=gen) * (lengths - width + 1).clamp(min=1)).long()
        span = (frames >= start[:, None]) & (frames < (start + width)[:, None])  # [B, T]
        keep &= ~span[:, :, None]
    return x * keep.to(x.device)
