"""The sharded feature store: one split's features as numpy shards plus an index (a library, not a step).

Written by `python -m asrsweep.data.compute_features --config C --data D --outdir O`, read by the
trainers and the emissions step. A split `S` of a features folder is

    S.index.tsv          one row per utterance, manifest order: utt_id, text, speaker, shard,
                         offset, frames (the core TSV format)
    S-00000.npy, ...     shards: the utterances' rows concatenated, [sum(frames), dim], float16
                         log-mels or float32 waveforms [samples, 1]; each at most ~shard_mb

The index is written last, so its presence means every shard is complete. `FeatureStore` opens the
shards with `np.load(mmap_mode="r")` and copies out only the utterances asked for: a training
process holds the index and the batches it is working on, never the split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from asrsweep.core.common import UserError, atomic_write
from asrsweep.core.tsv import read_tsv, write_tsv

INDEX_COLUMNS = ("utt_id", "text", "speaker", "shard", "offset", "frames")


def index_path(folder: str | Path, split: str) -> Path:
    """The index file of `split` in a features folder (the file the rules name)."""
    return Path(folder) / f"{split}.index.tsv"


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}.npy"


def _save_shard(path: Path, parts: list[np.ndarray]) -> None:
    with atomic_write(path, ".npy") as tmp:
        np.save(tmp, np.concatenate(parts, axis=0))


def write_split(folder: str | Path, split: str, rows: Iterable[dict], feats: Iterable[torch.Tensor],
                shard_mb: float) -> int:
    """Write `split`'s shards then its index; returns the number of shards.

    `rows` carry utt_id, text, speaker (manifest rows); `feats` are the matching tensors
    [frames, dim], consumed one at a time, so a generator keeps only one shard in memory. A shard is
    closed once it reaches `shard_mb` MB (an utterance is never split across shards).
    """
    folder, limit = Path(folder), shard_mb * 1e6
    index, parts, size, offset, number, dtype, parts_shape = [], [], 0, 0, 0, None, None
    for row, feat in zip(rows, feats):
        array = feat.numpy()
        if dtype is not None and (array.dtype != dtype or array.shape[1:] != parts_shape):
            raise ValueError(f"{split}: utterance {row['utt_id']}: dtype/shape differ from the split's")
        dtype, parts_shape = array.dtype, array.shape[1:]
        index.append({"utt_id": row["utt_id"], "text": row["text"], "speaker": row.get("speaker", ""),
                      "shard": number, "offset": offset, "frames": array.shape[0]})
        parts.append(array)
        size, offset = size + array.nbytes, offset + array.shape[0]
        if size >= limit:
            _save_shard(folder / shard_name(split, number), parts)
            parts, size, offset, number = [], 0, 0, number + 1
    if parts:
        _save_shard(folder / shard_name(split, number), parts)
        number += 1
    write_tsv(index_path(folder, split), INDEX_COLUMNS, index)
    return number


class FeatureStore:
    """One split, read lazily: `store[i]` is utterance i's tensor [frames, dim] (a copy), `len(store)`.

    `utt_ids`, `texts`, `speakers`, `frames` come from the index alone; the shards are memory-mapped
    on first use, so only the pages of utterances actually read are ever brought in.
    """

    def __init__(self, folder: str | Path, split: str) -> None:
        self.folder, self.split = Path(folder), split
        path = index_path(folder, split)
        if not path.is_file():
            raise UserError(f"{path}: file not found; run asrsweep.data.compute_features first")
        rows = read_tsv(path, INDEX_COLUMNS)
        self.utt_ids = [r["utt_id"] for r in rows]
        self.texts = [r["text"] for r in rows]
        self.speakers = [r["speaker"] for r in rows]
        self.shard = [int(r["shard"]) for r in rows]
        self.offset = [int(r["offset"]) for r in rows]
        self.frames = [int(r["frames"]) for r in rows]
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.utt_ids)

    def _map(self, number: int) -> np.ndarray:
        if number not in self._maps:
            path = self.folder / shard_name(self.split, number)
            if not path.is_file():
                raise UserError(f"{path}: shard missing; rerun asrsweep.data.compute_features")
            self._maps[number] = np.load(path, mmap_mode="r")
        return self._maps[number]

    def __getitem__(self, i: int) -> torch.Tensor:
        start = self.offset[i]
        return torch.from_numpy(np.array(self._map(self.shard[i])[start:start + self.frames[i]]))

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self[i] for i in range(len(self)))

    def dim(self) -> int:
        """Feature size per frame (n_mels, or 1 for waveforms); 0 for an empty split."""
        return int(self._map(0).shape[1]) if len(self) else 0

    def nbytes(self) -> int:
        """Bytes of all shards on disk (the memory a whole-split load would take)."""
        return sum(p.stat().st_size for p in self.folder.glob(f"{self.split}-*.npy"))


class Subset:
    """Utterances `keep` of a store (training drops those too short for CTC), read lazily."""

    def __init__(self, store, keep: list[int]) -> None:
        self.store, self.keep = store, keep

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.store[self.keep[i]]
