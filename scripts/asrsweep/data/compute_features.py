"""python -m asrsweep.data.compute_features --config <stage>/config.json --data R/E/data/<k> --outdir R/E/features/<k> [--threads 1] [--shard I --num-shards N | --merge --num-shards N]

Features for train/dev/test (section `features`). `type: logmel`: torch.stft (Hann window of win_ms, hop_ms, n_fft = next power
of two) → power → an HTK-mel triangular filterbank of n_mels bands over 0–8 kHz → log. Mean and
std per band come from train only and are applied to every split (an unseen dev/test speaker
must not leak statistics into the features). `type: waveform`: the 16 kHz samples themselves,
float32 [samples, 1] (for `model.encoder: hf`, which normalises them as its checkpoint says;
~230 MB per hour of audio). `type: auto` is resolved when the experiment is expanded (waveform for
model.encoder hf, else logmel); a config that still says auto gets log-mels. Writes each split to
the feature store (`asrsweep.data.feature_store`: shards of at most ~features.shard_mb MB and
{split}.index.tsv, written last) and cmvn.json. With features.shards N the workflow runs
`--shard I --num-shards N` jobs (each writes its contiguous slice of every split, unnormalised, to
parts/I-of-N/, part.json last) and one `--merge --num-shards N` index job (train statistics from
the parts' per-utterance sums, in manifest order: the same features as one job).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from asrsweep.core.common import UserError, atomic_write, cli_main, load_section, open_outdir, write_json_atomic
from asrsweep.data.audio import SPLITS, TARGET_RATE, read_manifest
from asrsweep.data.feature_store import FeatureStore, write_split

LOG_FLOOR = 1e-6  # power floor: digital silence (exact zeros in synthetic audio) stays finite


@dataclass(frozen=True)
class FeaturesConfig:
    """Section `features`: what is stored, and the log-mel settings."""

    type: str = "auto"  # logmel | waveform | auto (resolved at expansion: waveform for model.encoder hf)
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    shard_mb: float = 32.0  # a shard file closes once it holds this many MB
    shards: int = 1  # extraction jobs (the workflow runs --shard I of N, then --merge)


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


def save_waveforms(rows: dict[str, list[dict]], outdir: Path, shard_mb: float) -> dict:
    """features.type waveform: every split's samples as float32 [samples, 1]; returns cmvn.json's content."""
    for split, split_rows in rows.items():  # a generator: one shard in memory at a time
        write_split(outdir, split, split_rows, (load_wave(r["audio"])[:, None] for r in split_rows), shard_mb)
    return cmvn_content(None, None, None)


def train_stats(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std [n_mels] over all train frames (float64 sums: hours of frames)."""
    return stats_from_sums(sum(f.shape[0] for f in feats), [utterance_sums(f) for f in feats])


def utterance_sums(feat: torch.Tensor) -> torch.Tensor:
    """Sum and sum of squares of one utterance's frames, float64 [2, n_mels] (what a shard job keeps)."""
    return torch.stack([feat.double().sum(0), feat.double().pow(2).sum(0)])


def stats_from_sums(total: int, sums) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std [n_mels] from per-utterance sums [2, n_mels], added in manifest order.

    One order for one job and for N shard jobs, so both give bitwise the same statistics.
    """
    if total == 0:
        raise UserError("train split has no frames; check the data step")
    sums = list(sums)
    s1 = sum(u[0] for u in sums)
    s2 = sum(u[1] for u in sums)
    mean = s1 / total
    std = (s2 / total - mean.pow(2)).clamp_min(1e-10).sqrt()
    return mean.float(), std.float()


def normalise(feats: list[torch.Tensor], mean: torch.Tensor, std: torch.Tensor) -> list[torch.Tensor]:
    """(x - mean) / std, stored as float16 [frames, n_mels]."""
    return [((f - mean) / std).to(torch.float16) for f in feats]


def shard_part(rows: dict[str, list[dict]], shard: int, num: int) -> dict[str, list[dict]]:
    """Job `shard` of `num`: a contiguous slice of every split, so the parts concatenate in manifest order."""
    return {split: r[len(r) * shard // num:len(r) * (shard + 1) // num] for split, r in rows.items()}


def part_dir(outdir: Path, shard: int, num: int) -> Path:
    return outdir / "parts" / f"{shard}-of-{num}"


def write_part(cfg: FeaturesConfig, rows: dict[str, list[dict]], folder: Path) -> dict:
    """One shard job: unnormalised features of its rows (float32 log-mels or waveforms) as a feature
    store in `folder`, the per-utterance train sums, and part.json last (its presence = done)."""
    logmel, sums = LogMel(cfg), []
    for split, split_rows in rows.items():
        if cfg.type == "waveform":
            feats = (load_wave(r["audio"])[:, None] for r in split_rows)
        else:
            feats = (logmel(load_wave(r["audio"])) for r in split_rows)
            if split == "train":
                feats = (sums.append(utterance_sums(f)) or f for f in feats)
        write_split(folder, split, split_rows, feats, cfg.shard_mb)
    if sums:
        with atomic_write(folder / "train-sums.npy", ".npy") as tmp:
            np.save(tmp, torch.stack(sums).numpy())
    part = {split: len(r) for split, r in rows.items()}
    write_json_atomic(folder / "part.json", part)
    return part


def merge_parts(cfg: FeaturesConfig, outdir: Path, num: int) -> dict:
    """The index job: statistics from the parts' sums, then each split normalised part by part into
    the final store (one shard in memory at a time); returns cmvn.json's content."""
    parts = [part_dir(outdir, i, num) for i in range(num)]
    missing = [str(p) for p in parts if not (p / "part.json").is_file()]
    if missing:
        raise UserError(f"--merge: shard jobs not finished: {', '.join(missing)}")
    mean = std = None
    if cfg.type != "waveform":
        total = sum(sum(FeatureStore(p, "train").frames) for p in parts)
        sums = (torch.from_numpy(u) for p in parts if (p / "train-sums.npy").is_file()
                for u in np.load(p / "train-sums.npy"))
        mean, std = stats_from_sums(total, sums)
    for split in SPLITS:
        stores = [FeatureStore(p, split) for p in parts]
        rows = [{"utt_id": u, "text": t, "speaker": s} for st in stores
                for u, t, s in zip(st.utt_ids, st.texts, st.speakers)]
        feats = (f if mean is None else normalise([f], mean, std)[0] for st in stores for f in st)
        write_split(outdir, split, rows, feats, cfg.shard_mb)
    return cmvn_content(cfg, mean, std)


def cmvn_content(cfg: FeaturesConfig, mean: torch.Tensor | None, std: torch.Tensor | None) -> dict:
    """cmvn.json: the train statistics and settings of log-mels (as before the store), or the waveform note."""
    if mean is None:
        return {"settings": {"type": "waveform"}, "sample_rate": TARGET_RATE}
    layout = ("type", "shard_mb", "shards")  # how the store is written, not what it holds
    settings = {k: v for k, v in asdict(cfg).items() if k not in layout}
    return {"mean": mean.tolist(), "std": std.tolist(), "settings": settings, "sample_rate": TARGET_RATE}


def check(cfg: FeaturesConfig, where: str) -> None:
    """Reject settings that cannot make features."""
    if cfg.type not in ("auto", "logmel", "waveform"):
        raise UserError(f"{where}: features.type: {cfg.type!r}; use auto, logmel or waveform")
    if not isinstance(cfg.n_mels, int) or not 1 <= cfg.n_mels <= 256:
        raise UserError(f"{where}: features.n_mels: must be an integer in 1..256")
    if not 0 < cfg.hop_ms <= cfg.win_ms <= 100:
        raise UserError(f"{where}: features.win_ms/hop_ms: need 0 < hop_ms ≤ win_ms ≤ 100")
    if not cfg.shard_mb > 0:
        raise UserError(f"{where}: features.shard_mb: must be > 0")
    if not isinstance(cfg.shards, int) or cfg.shards < 1:
        raise UserError(f"{where}: features.shards: must be an integer >= 1")


def run(argv: list[str] | None = None) -> dict:
    """Parse flags, compute train stats, write normalised features for every split and cmvn.json."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.data.compute_features", description=__doc__.split("\n\n")[1])
    parser.add_argument("--config", required=True, help="stage config.json with section `features`")
    parser.add_argument("--data", required=True, help="data folder with train.tsv dev.tsv test.tsv")
    parser.add_argument("--outdir", required=True, help="output folder (R/E/features/<k>)")
    # Per-utterance tensors are small: 1 thread ran 0.5 s / 300 utts, 2 threads on a busy
    # 2-core machine 8.5 s (OpenMP spin-waits), so more threads are opt-in.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--shard", type=int, default=None, help="shard job I of --num-shards: write parts/I-of-N only")
    parser.add_argument("--merge", action="store_true", help="index job: merge parts/*-of-N into the store")
    parser.add_argument("--num-shards", type=int, default=1, help="number of shard jobs (features.shards)")
    args = parser.parse_args(argv)
    if args.num_shards < 1 or (args.shard is not None and not 0 <= args.shard < args.num_shards):
        raise UserError(f"--shard {args.shard} --num-shards {args.num_shards}: need 0 <= shard < num-shards")
    outdir = Path(args.outdir)
    # a shard job records its command in its own part folder (the index job's is the folder's)
    open_outdir(outdir if args.shard is None else part_dir(outdir, args.shard, args.num_shards), argv)
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
    if args.shard is not None:
        part = write_part(cfg, shard_part(rows, args.shard, args.num_shards),
                          part_dir(outdir, args.shard, args.num_shards))
        print(f"compute_features: shard {args.shard} of {args.num_shards}: {sum(part.values())} utterances "
              f"in {time.time() - start:.1f} s", flush=True)
        return part
    if args.merge:
        cmvn = merge_parts(cfg, outdir, args.num_shards)
        write_json_atomic(outdir / "cmvn.json", cmvn)
        print(f"compute_features: merged {args.num_shards} shards in {time.time() - start:.1f} s", flush=True)
        return cmvn
    if cfg.type == "waveform":
        cmvn = save_waveforms(rows, outdir, cfg.shard_mb)
        write_json_atomic(outdir / "cmvn.json", cmvn)
        print(f"compute_features: {sum(map(len, rows.values()))} waveforms in {time.time() - start:.1f} s", flush=True)
        return cmvn
    train = split_features(rows["train"], logmel)
    mean, std = train_stats(train)
    write_split(outdir, "train", rows["train"], normalise(train, mean, std), cfg.shard_mb)
    del train
    for split in ("dev", "test"):
        write_split(outdir, split, rows[split], normalise(split_features(rows[split], logmel), mean, std), cfg.shard_mb)
    cmvn = cmvn_content(cfg, mean, std)
    write_json_atomic(outdir / "cmvn.json", cmvn)
    print(f"compute_features: {sum(map(len, rows.values()))} utterances in {time.time() - start:.1f} s", flush=True)
    return cmvn


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserErrors turned into one line on stderr and exit status 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
