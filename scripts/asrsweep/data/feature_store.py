"""The sharded feature store: one split's features as numpy shards plus an index (a library, not a step).

Written by `python -m asrsweep.data.compute_features --config C --data D --outdir O`, read by the
trainers and the emissions step. A split `S` of a features folder is

    S.index.tsv          one row per utterance, manifest order: utt_id, text, speaker, shard,
                         offset, frames (the core TSV format)
    S-00000.npy, ...     shards: the utterances' rows concatenated, [sum(frames), dim], float16
                         log-mels or float32 waveforms [samples, 1]; each at most ~shard_mb

The index is written last, so its presence means every shard is complete. `FeatureStore` reads a
shard's .npy header once and then only the bytes of the utterances asked for (`os.preadv` at
their offset): a training process holds the index and the batches it is working on, never the
split. Not a memory map: mapped pages that a process has touched count in its RSS (which SLURM's
memory accounting reads) until it unmaps them, so over an epoch a training would seem to grow
with the store; and a map keeps a file descriptor per shard open (a 960 h store has ~1,800
shards, above the usual limit of 1,024). Reads go through the page cache all the same.
"""

from __future__ import annotations

import dataclasses
import os
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


@dataclasses.dataclass(frozen=True)
class ShardLayout:
    """Where a shard's rows start in its .npy file, and what a row is."""

    path: Path
    data_offset: int  # bytes before the first row (magic + header)
    dtype: np.dtype
    dim: int  # values per row
    rows: int

    @property
    def row_bytes(self) -> int:
        return self.dim * self.dtype.itemsize


def read_layout(path: Path) -> ShardLayout:
    """Parse a shard's .npy header (numpy's documented format, versions 1 and 2)."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version not in readers:
            raise UserError(f"{path}: .npy format version {version} not supported; rerun asrsweep.data.compute_features")
        shape, fortran, dtype = readers[version](handle)
        offset = handle.tell()
    if fortran or len(shape) != 2:
        raise UserError(f"{path}: not a C-ordered [rows, dim] array; rerun asrsweep.data.compute_features")
    return ShardLayout(path, offset, dtype, int(shape[1]), int(shape[0]))


class FeatureStore:
    """One split, read lazily: `store[i]` is utterance i's tensor [frames, dim] (a copy), `len(store)`.

    `utt_ids`, `texts`, `speakers`, `frames` come from the index alone; a read takes one shard
    header (parsed once) and the utterance's own bytes. Safe in forked DataLoader workers: no file
    position is shared (each read opens, preads and closes).
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
        self._layouts: dict[int, ShardLayout] = {}

    def __len__(self) -> int:
        return len(self.utt_ids)

    def _layout(self, number: int) -> ShardLayout:
        if number not in self._layouts:
            path = self.folder / shard_name(self.split, number)
            if not path.is_file():
                raise UserError(f"{path}: shard missing; rerun asrsweep.data.compute_features")
            self._layouts[number] = read_layout(path)
        return self._layouts[number]

    def __getitem__(self, i: int) -> torch.Tensor:
        layout, frames = self._layout(self.shard[i]), self.frames[i]
        if self.offset[i] + frames > layout.rows:
            raise UserError(f"{layout.path}: utterance {self.utt_ids[i]} lies past the shard's {layout.rows} rows; "
                            "the index and the shards disagree: rerun asrsweep.data.compute_features")
        buffer = bytearray(frames * layout.row_bytes)
        fd = os.open(layout.path, os.O_RDONLY)
        try:
            read = os.preadv(fd, [buffer], layout.data_offset + self.offset[i] * layout.row_bytes)
        finally:
            os.close(fd)
        if read != len(buffer):
            raise UserError(f"{layout.path}: truncated shard; rerun asrsweep.data.compute_features")
        return torch.from_numpy(np.frombuffer(buffer, layout.dtype).reshape(frames, layout.dim))

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (self[i] for i in range(len(self)))

    def dim(self) -> int:
        """Feature size per frame (n_mels, or 1 for waveforms); 0 for an empty split."""
        return self._layout(self.shard[0]).dim if len(self) else 0

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
