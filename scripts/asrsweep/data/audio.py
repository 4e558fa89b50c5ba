"""Audio I/O, resampling, text normalisation and the `data` config section; a library, not a step.

Used by `python -m asrsweep.data.prepare_demo --config C --outdir D`,
`python -m asrsweep.data.prepare_corpus --config C --outdir D` and
`python -m asrsweep.data.compute_features --config C --data D --outdir F`.

Kept free of torch and pandas: espeak worker processes import it and must start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import shutil
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from asrsweep.core import tsv
from asrsweep.core.common import load_section, open_outdir

TARGET_RATE = 16000
MANIFEST_COLUMNS = ["utt_id", "audio", "text", "speaker", "duration"]
SPLITS = ("train", "dev", "test")
SPLIT_BY = ("speaker", "utterance")  # data.split_by: how prepare_corpus carves a missing dev/test


@dataclass(frozen=True)
class DemoConfig:
    """`data.demo`: the generated espeak-ng corpus (see prepare_demo.py)."""

    train_utts: int = 3000
    dev_utts: int = 150
    test_utts: int = 150
    lm_sentences: int = 20000
    seed: int = 0
    voices: list = field(default_factory=lambda: ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"])
    train_variants: list = field(default_factory=lambda: [
        "m1", "m2", "m3", "m5", "m6", "m7", "f1", "f2", "f4", "f5",
        "klatt", "klatt2", "klatt4", "Andy", "adam", "Alex", "Annie", "benjamin", "john", "linda",
        "Mike", "Michael", "david", "ian", "paul", "robert", "victor", "edward", "Lee", "Reed", "max", "zac",
    ])
    dev_variants: list = field(default_factory=lambda: ["m4", "f3"])
    test_variants: list = field(default_factory=lambda: ["m8", "klatt3"])
    speeds: list = field(default_factory=lambda: [150, 185])
    pitches: list = field(default_factory=lambda: [40, 60])


@dataclass(frozen=True)
class NormalizeConfig:
    """`data.normalize`: transcript normalisation for real corpora."""

    lowercase: bool = True
    punctuation: str = "drop"  # drop | keep; "drop" keeps apostrophes inside words (don't)
    digits: str = "keep"  # keep | drop


@dataclass(frozen=True)
class DataConfig:
    """Section `data` of a stage config."""

    source: str = "demo"  # demo | manifest | librispeech | kaldi | parquet | hf
    path: str = ""
    demo: DemoConfig = field(default_factory=DemoConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    min_duration: float = 0.1
    max_duration: float = 30.0
    max_bad_fraction: float = 0.05
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    split_by: str = "speaker"  # speaker | utterance
    workers: int = 2
    shards: int = 1  # real corpora: conversion jobs (prepare_corpus --shard), merged by one job
    copy_audio: bool = False  # True: 16 kHz mono WAV/FLAC is copied too, not referenced in place

    def as_dict(self) -> dict:
        """Plain-dict form, for report.json."""
        return asdict(self)


def parse_data_step(module: str, doc: str, argv: list[str] | None,
                    add_flags=None) -> tuple[argparse.Namespace, Path, DataConfig]:
    """Flags of a data step (`--config`, `--outdir`, and what `add_flags(parser)` adds) ->
    (args, the created outdir, section `data`).

    Shared by prepare_demo and prepare_corpus; `doc` is the step's module docstring.
    """
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.split("\n\n")[1])
    parser.add_argument("--config", required=True, help="stage config.json with section `data`")
    parser.add_argument("--outdir", required=True, help="output folder (R/E/data/<k>)")
    if add_flags is not None:
        add_flags(parser)
    args = parser.parse_args(argv)
    outdir = open_outdir(args.outdir, argv)
    return args, outdir, load_section(args.config, "data", DataConfig)


def normalize_text(text: str, cfg: NormalizeConfig) -> str:
    """Normalise one transcript: NFKC, optional lowercase, punctuation and digit handling, single spaces."""
    if cfg.punctuation not in ("drop", "keep"):
        raise ValueError(f"normalize.punctuation must be drop or keep, got {cfg.punctuation!r}")
    if cfg.digits not in ("drop", "keep"):
        raise ValueError(f"normalize.digits must be drop or keep, got {cfg.digits!r}")
    text = unicodedata.normalize("NFKC", text)
    if cfg.lowercase:
        text = text.lower()
    if cfg.digits == "drop":
        text = re.sub(r"\d", " ", text)
    if cfg.punctuation == "drop":
        # Keep word-internal apostrophes (LibriSpeech "don't"), drop every other non-word char.
        text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
        text = re.sub(r"[^\w\s']|_", " ", text)
    return " ".join(text.split())


def resample(x: np.ndarray, orig_rate: int, new_rate: int, zeros: int = 16, rolloff: float = 0.95) -> np.ndarray:
    """Band-limited (Hann-windowed sinc) polyphase resampling of float audio [samples] → [ceil(n·new/orig)].

    Rates are reduced by their gcd to L/M; output sample n sits at input position n·M/L, whose
    fractional part takes only L values, so the filter is a small table [L, taps].
    """
    x = np.asarray(x, dtype=np.float64)
    if orig_rate == new_rate:
        return x.astype(np.float32)
    g = math.gcd(orig_rate, new_rate)
    up, down = new_rate // g, orig_rate // g
    cutoff = min(1.0, up / down) * rolloff  # fraction of the input Nyquist kept
    half = int(math.ceil(zeros / cutoff))  # taps each side, in input samples
    offsets = np.arange(-half + 1, half + 1)  # taps at floor(pos) + j
    frac = np.arange(up)[:, None] / up
    delta = frac - offsets[None, :]  # [up, taps]: distance from output point to each tap
    window = np.where(np.abs(delta) < half, np.cos(np.pi * delta / (2 * half)) ** 2, 0.0)
    table = cutoff * np.sinc(cutoff * delta) * window
    n_out = int(math.ceil(len(x) * up / down))
    padded = np.concatenate([np.zeros(half), x, np.zeros(2 * half + down + 1)])
    rows = np.lib.stride_tricks.sliding_window_view(padded, len(offsets))  # [samples, taps], a view
    out = np.empty(n_out, dtype=np.float64)
    # Outputs q, q+up, q+2·up, ... share one filter phase and sit `down` input samples apart.
    for q in range(min(up, n_out)):
        count = len(range(q, n_out, up))
        start = (q * down) // up + 1  # row = first tap (floor(pos) - half + 1) + padding `half`
        out[q::up] = rows[start : start + down * (count - 1) + 1 : down] @ table[(q * down) % up]
    return out.astype(np.float32)


def read_audio(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Read a file path or encoded bytes (WAV/FLAC/...) → (mono float32 [samples], rate)."""
    import soundfile

    handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)
    data, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    return data.mean(axis=1), int(rate)


def is_target_format(path: str | Path) -> bool:
    """Whether the file at `path` is already what the steps read: a 16 kHz mono WAV or FLAC."""
    import soundfile

    info = soundfile.info(str(path))
    return info.format in ("WAV", "FLAC") and info.samplerate == TARGET_RATE and info.channels == 1


def write_wav16k(path: str | Path, audio: np.ndarray) -> None:
    """Write float audio [samples] in [-1, 1] as a 16 kHz mono int16 WAV."""
    import soundfile

    pcm = np.clip(np.round(np.asarray(audio) * 32768.0), -32768, 32767).astype(np.int16)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), pcm, TARGET_RATE, subtype="PCM_16")


@contextlib.contextmanager
def staged_audio(outdir: Path) -> Iterator[Path]:
    """Yield an empty hidden folder in `outdir` for the WAVs; it becomes `outdir/audio` only if the block succeeds.

    So a failed data step leaves no half-written audio folder: the partial one is removed, and
    a complete `audio/` of an earlier run is replaced only by a complete one. One data job owns
    its outdir, so a fixed name serves; a killed job's leftover (no `finally` ran) goes first.
    """
    staging = outdir / ".audio.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        shutil.rmtree(outdir / "audio", ignore_errors=True)
        staging.rename(outdir / "audio")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def manifest_text(rows: list[dict]) -> str:
    """Render manifest rows (dicts with MANIFEST_COLUMNS) as text in the project's TSV format."""
    return tsv.tsv_text(MANIFEST_COLUMNS, ({**row, "duration": f"{row['duration']:.3f}"} for row in rows))


def read_manifest(path: str | Path) -> list[dict]:
    """Read a `{split}.tsv` manifest; `audio` is resolved against the manifest's folder."""
    path = Path(path)
    rows = tsv.read_tsv(path, MANIFEST_COLUMNS)
    for row in rows:
        row["audio"] = str((path.parent / row["audio"]).resolve())
        row["duration"] = float(row["duration"])
    return rows
