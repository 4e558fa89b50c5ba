"""Training batches read ahead of the train step (not a step): a torch DataLoader over one rank's share.

Used by `python -m asrsweep.acoustic.train`. An epoch is a list of global batches
(`batching.epoch_batches`); each rank reads, pads and (on CUDA) pins only its share of each one
(`batching.rank_share`), in `train.loader_workers` worker processes that stay `PREFETCH` batches
ahead, so a lazily read feature store never holds more than those batches in memory. Batches come
out in epoch order from any start index: a resumed run starting at the checkpointed index sees
exactly the batches it would have seen. SpecAugment stays in the trainer (it is seeded per step).
"""

from __future__ import annotations

import dataclasses
import signal
from typing import Iterable

import torch

from asrsweep.acoustic.batching import pad_batch, pad_targets, rank_share
from asrsweep.core.checkpoint import StopSignal

PREFETCH = 4  # batches each worker prepares ahead


@dataclasses.dataclass
class Batch:
    """One rank's share of a global batch, padded."""

    idx: list[int]  # utterances (indices into the split)
    feats: torch.Tensor  # [B, T, F] float32
    lengths: torch.Tensor  # [B]
    targets: torch.Tensor  # concatenated CTC targets
    target_lengths: torch.Tensor  # [B]
    total: int  # utterances of the global batch, on all ranks: the loss is a mean over them

    def pin_memory(self) -> Batch:
        """Called by the DataLoader's pinning thread (pin_memory=True): page-locked copies for async H2D."""
        return dataclasses.replace(self, feats=self.feats.pin_memory(), lengths=self.lengths.pin_memory(),
                                   targets=self.targets.pin_memory(), target_lengths=self.target_lengths.pin_memory())


class ShareDataset(torch.utils.data.Dataset):
    """Item k = this rank's padded share of global batch k; reads only those utterances."""

    def __init__(self, split: dict, batches: list[list[int]], rank: int, world: int) -> None:
        self.feats, self.targets = split["feats"], split["targets"]
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, k: int) -> Batch:
        return read_batch(self.feats, self.targets, rank_share(self.batches[k], self.rank, self.world),
                          len(self.batches[k]))


def read_batch(feats, targets: list[list[int]], idx: list[int], total: int | None = None) -> Batch:
    """Utterances `idx` of a split padded into a Batch (`total`: of the global batch; default len(idx))."""
    x, lengths = pad_batch(feats, idx)
    flat, target_lengths = pad_targets(targets, idx)
    return Batch(idx, x, lengths, flat, target_lengths, len(idx) if total is None else total)


def _quiet_worker(worker_id: int) -> None:
    """Workers ignore the stop signals: SLURM signals every process of the job, and a worker that died
    of SIGTERM would fail the trainer's next batch instead of letting it checkpoint and exit 75."""
    for sig in StopSignal.SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def share_batches(split: dict, batches: list[list[int]], start: int, rank: int, world: int,
                  workers: int, pin: bool) -> Iterable[Batch]:
    """This rank's batches `start`, `start + 1`, ... of `batches`, in order (workers=0: read in process)."""
    dataset = ShareDataset(split, batches, rank, world)
    if workers == 0:
        return (dataset[k] for k in range(start, len(dataset)))
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=range(start, len(dataset)),
                                       num_workers=workers, prefetch_factor=PREFETCH, pin_memory=pin,
                                       worker_init_fn=_quiet_worker)
