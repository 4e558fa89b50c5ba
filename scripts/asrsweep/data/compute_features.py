"""python -m asrsweep.data.compute_features --config <stage>/config.json --data R/E/data/<k> --outdir R/E/features/<k> [--threads 1]

Features for train/dev/test (section `features`). `type: logmel`: torch.stft (Hann window of win_ms, hop_ms, n_fft = next power
of two) → power → an HTK-mel triangular filterbank of n_mels bands over 0–8 kHz → log. Mean and
std per band come from train only and are applied to every split (an unseen dev/test speaker
must not leak statistics into the features). `type: waveform`: the 16 kHz samples themselves,
float32 [samples, 1] (for `model.encoder: hf`, which normalises them as its checkpoint says;
~230 MB per hour of audio). `type: auto` is resolved when the experiment is expanded (waveform for
model.encoder hf, else logmel); a config that still says auto gets log-mels. Writes {split}.pt
(see `save_split`) and cmvn.json.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from asrsweep.data.audio import SPLITS, TARGET_RATE, read_manifest
from asrsweep.core.common import UserError, cli_main, load_section, open_outdir, torch_save_atomic, write_json_atomic

LOG_FLOOR = 1e-6  # power floor: digital silence (exact zeros in synthetic audio) stays finite


@dataclass(frozen=True)
class FeaturesConfig:
    """Section `features`: what is stored, and the log-mel settings."""

    type: str = "auto"  # logmel | waveform | auto (resolved at expansion: waveform for model.encoder hf)
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0


def mel_filterbank(n_mels: int, n_fft: int, rate: int = TARGET_RATE) -> torch.Tensor:
    """Triangular HTK-mel filters [n_fft // 2 + 1, n_mels] spanning 0 Hz … rate / 2."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(0.0, to_mel(rate / 2), n_mels + 2))  # [n_mels + 2] Hz
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)  # [freqs] Hz
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    filters = np.clip(np.minimum(rising, falling), 0.0, None)  # [n_mels, freqs]
    return torch.from_numpy(filters.T.astype(np.float32))


class LogMel:
    """Callable: float waveform [samples] at 16 kHz → log-mel [frames, n_mels], frames = 1 + samples // hop."""

    def __init__(self, cfg: FeaturesConfig) -> None:
        self.win = int(round(cfg.win_ms * TARGET_RATE / 1000))
        self.hop = int(round(cfg.hop_ms * TARGET_RATE / 1000))
        self.n_fft = 1 << math.ceil(math.log2(self.win))
        self.window = torch.hann_window(self.win)
        self.filters = mel_filterbank(cfg.n_mels, self.n_fft)

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave, self.n_fft, self.hop, self.win, self.window, center=True, return_complex=True)
        power = spec.abs().pow(2).T  # [frames, freqs]
        return (power @ self.filters).clamp_min(LOG_FLOOR).log()


def load_wave(path: str) -> torch.Tensor:
    """A 16 kHz mono WAV/FLAC as float32 [samples]; other rates are a UserError (prepare_* resample)."""
    import soundfile

    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several types; name the file
        raise UserError(f"{path}: unreadable audio ({err}); rerun the data step") from None
    if rate != TARGET_RATE:
        raise UserError(f"{path}: sample rate {rate}, expected {TARGET_RATE}; prepare data with prepare_corpus")
    return torch.from_numpy(data.mean(axis=1))


def split_features(rows: list[dict], logmel: LogMel) -> list[torch.Tensor]:
    """Raw (unnormalised) float32 log-mels [frames, n_mels], one per manifest row."""
    return [logmel(load_wave(row["audio"])) for row in rows]


def save_waveforms(rows: dict[str, list[dict]], outdir: Path) -> dict:
    """features.type waveform: every split's samples as float32 [samples, 1]; returns cmvn.json's content."""
    for split, split_rows in rows.items():
        save_split(outdir / f"{split}.pt", split_rows, [load_wave(r["audio"])[:, None] for r in split_rows])
    return {"settings": {"type": "waveform"}, "sample_rate": TARGET_RATE}


def train_stats(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std [n_mels] over all train frames (float64 sums: hours of frames)."""
    total = sum(f.shape[0] for f in feats)
    if total == 0:
        raise UserError("train split has no frames; check the data step")
    s1 = sum(f.double().sum(0) for f in feats)
    s2 = sum(f.double().pow(2).sum(0) for f in feats)
    mean = s1 / total
    std = (s2 / total - mean.pow(2)).clamp_min(1e-10).sqrt()
    return mean.float(), std.float()


def normalise(feats: list[torch.Tensor], mean: torch.Tensor, std: torch.Tensor) -> list[torch.Tensor]:
    """(x - mean) / std, stored as float16 [frames, n_mels]."""
    return [((f - mean) / std).to(torch.float16) for f in feats]


def save_split(path: Path, rows: list[dict], feats: list[torch.Tensor]) -> None:
    """Write one `{split}.pt`: a dict of lists in manifest order, one item per utterance.

    "utt_ids", "texts", "speakers": str; "feats": normalised log-mels, float16 [frames, n_mels]
    (or waveforms, float32 [samples, 1]).
    """
    torch_save_atomic({
        "utt_ids": [r["utt_id"] for r in rows],
        "texts": [r["text"] for r in rows],
        "speakers": [r["speaker"] for r in rows],
        "feats": feats,
    }, path)


def check(cfg: FeaturesConfig, where: str) -> None:
    """Reject settings that cannot make features."""
    if cfg.type not in ("auto", "logmel", "waveform"):
        raise UserError(f"{where}: features.type: {cfg.type!r}; use auto, logmel or waveform")
    if not isinstance(cfg.n_mels, int) or not 1 <= cfg.n_mels <= 256:
        raise UserError(f"{where}: features.n_mels: must be an integer in 1..256")
    if not 0 < cfg.hop_ms <= cfg.win_ms <= 100:
        raise UserError(f"{where}: features.win_ms/hop_ms: need 0 < hop_ms ≤ win_ms ≤ 100")


def run(argv: list[str] | None = None) -> dict:
    """Parse flags, compute train stats, write normalised features for every split and cmvn.json."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.data.compute_features", description=__doc__.split("\n\n")[1])
    parser.add_argument("--config", required=True, help="stage config.json with section `features`")
    parser.add_argument("--data", required=True, help="data folder with train.tsv dev.tsv test.tsv")
    parser.add_argument("--outdir", required=True, help="output folder (R/E/features/<k>)")
    # Per-utterance tensors are small: 1 thread ran 0.5 s / 300 utts, 2 threads on a busy
    # 2-core machine 8.5 s (OpenMP spin-waits), so more threads are opt-in.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args(argv)
    outdir = open_outdir(args.outdir, argv)
    cfg = load_section(args.config, "features", FeaturesConfig)
    check(cfg, args.config)
    torch.set_num_threads(max(1, args.threads))
    start = time.time()
    logmel = LogMel(cfg)
    rows = {}
    for split in SPLITS:
        manifest = Path(args.data) / f"{split}.tsv"
        if not manifest.is_file():
            raise UserError(f"{manifest}: not found; run the data step first")
        rows[split] = read_manifest(manifest)
    if cfg.type == "waveform":
        cmvn = save_waveforms(rows, outdir)
        write_json_atomic(outdir / "cmvn.json", cmvn)
        print(f"compute_features: {sum(map(len, rows.values()))} waveforms in {time.time() - start:.1f} s", flush=True)
        return cmvn
    train = split_features(rows["train"], logmel)
    mean, std = train_stats(train)
    save_split(outdir / "train.pt", rows["train"], normalise(train, mean, std))
    del train
    frames = {}
    for split in ("dev", "test"):
        feats = normalise(split_features(rows[split], logmel), mean, std)
        frames[split] = sum(f.shape[0] for f in feats)
        save_split(outdir / f"{split}.pt", rows[split], feats)
    settings = {k: v for k, v in asdict(cfg).items() if k != "type"}  # logmel: cmvn.json as before
    cmvn = {"mean": mean.tolist(), "std": std.tolist(), "settings": settings, "sample_rate": TARGET_RATE}
    write_json_atomic(outdir / "cmvn.json", cmvn)
    print(f"compute_features: {sum(map(len, rows.values()))} utterances in {time.time() - start:.1f} s", flush=True)
    return cmvn


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserErrors turned into one line on stderr and exit status 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
