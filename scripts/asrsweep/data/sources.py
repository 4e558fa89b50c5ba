"""Corpus sources: a manifest, a LibriSpeech, Kaldi, parquet or Hugging Face folder -> Entries; a library.

Used by `python -m asrsweep.data.prepare_corpus --config C --outdir D`, which converts the
entries (`data.source` picks the reader in READERS, `data.path` is what it reads). The formats,
with a worked example of each, are in config/README.md ("The corpus"). In short:

  manifest     a .tsv or .jsonl file, one utterance per line. Columns (first alias found wins):
               audio (path, wav, file, audio_path, audio_filepath), text (transcript, sentence,
               transcription, normalized_text), optional utt_id (id, key), speaker (speaker_id,
               client_id) and split (train*, dev*/valid*/val*, test*/eval*). Audio paths are
               absolute or relative to the manifest's folder. A .tsv has a header line; its fields
               are split at tabs, with no quoting and no escapes (`"` and `\\` are text).
  librispeech  a folder with <spk>/<chapter>/*.trans.txt and <utt>.flac; top-level subfolders
               named train*/dev*/test* become the splits
  kaldi        a folder with wav.scp + text (+ utt2spk), or train*/dev*/test* subfolders of
               those; wav.scp entries must be plain paths
  parquet      a .parquet file or folder: an audio column ({bytes,path} struct, bytes or path)
               and a text column (the manifest's aliases)
  hf           a `datasets.save_to_disk` folder (needs `pip install datasets`)
Every text file is read as UTF-8; other bytes are one error naming the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from asrsweep.core import tsv
from asrsweep.core.common import UserError
from asrsweep.core.manifest import AUDIO_KEYS, manifest_rows

TEXT_KEYS = ("text", "transcript", "sentence", "transcription", "normalized_text")
SPEAKER_KEYS = ("speaker", "speaker_id", "client_id")
ID_KEYS = ("utt_id", "id", "key")


@dataclass(frozen=True)
class Entry:
    """One source utterance before conversion; `audio` is a path, encoded bytes or None."""

    utt_id: str
    audio: str | bytes | None
    text: str | None
    speaker: str = ""
    split: str | None = None
    problem: str | None = None  # a reason known before reading the audio


def canonical_split(name: str) -> str | None:
    """Map a source split name to train/dev/test: `train-clean-100` → train, `validation` → dev."""
    name = name.lower()
    for split, prefixes in (("train", ("train",)), ("dev", ("dev", "valid", "val")), ("test", ("test", "eval"))):
        if name.startswith(prefixes):
            return split
    return None


def clean_id(raw: str) -> str:
    """A file-name-safe utterance id."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(raw)) or "utt"


def _pick(row: dict, keys: tuple[str, ...]):
    """The value of the first of `keys` present (and not None) in `row`."""
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def read_manifest_source(path: Path) -> list[Entry]:
    """Entries of a manifest .tsv (with header) or .jsonl; audio paths relative to its folder."""
    if not path.is_file():
        raise UserError(f"data.path: {path}: manifest not found")
    rows = manifest_rows(path)
    if not rows:
        raise UserError(f"{path}: no utterances (a .tsv manifest needs a header line and one line per utterance)")
    if _pick(rows[0], AUDIO_KEYS) is None:
        raise UserError(f"{path}: no audio column; expected one of {', '.join(AUDIO_KEYS)}")
    entries = []
    for i, row in enumerate(rows):
        audio = _pick(row, AUDIO_KEYS)
        utt = _pick(row, ID_KEYS) or (Path(audio).stem if audio else f"row{i}")
        split = row.get("split") or None
        entries.append(Entry(clean_id(utt), str(path.parent / audio) if audio else None, _pick(row, TEXT_KEYS),
                             str(_pick(row, SPEAKER_KEYS) or ""), split))
    return entries


def read_librispeech(root: Path) -> list[Entry]:
    """Entries of a LibriSpeech-style folder (<spk>/<chapter>/<spk>-<chapter>.trans.txt + .flac)."""
    entries = []
    for trans in sorted(root.rglob("*.trans.txt")):
        top = trans.relative_to(root).parts[0]
        split = top if canonical_split(top) else None
        for line in tsv.read_text(trans).splitlines():
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            flac = trans.parent / f"{utt}.flac"
            entries.append(Entry(clean_id(utt), str(flac), text, utt.split("-")[0], split))
    if not entries:
        raise UserError(f"data.path: {root}: no *.trans.txt files found (source: librispeech)")
    return entries


def _kaldi_table(path: Path) -> dict[str, str]:
    """A Kaldi `key value...` file as a dict (missing file → empty)."""
    if not path.is_file():
        return {}
    lines = (line.strip().split(maxsplit=1) for line in tsv.read_text(path).splitlines() if line.strip())
    return {parts[0]: parts[1] if len(parts) > 1 else "" for parts in lines}


def read_kaldi(root: Path) -> list[Entry]:
    """Entries of a Kaldi data folder (wav.scp, text, utt2spk) or of its train*/dev*/test* subfolders."""
    folders = [root] if (root / "wav.scp").is_file() else sorted(
        d for d in root.iterdir() if d.is_dir() and (d / "wav.scp").is_file() and canonical_split(d.name))
    if not folders:
        raise UserError(f"data.path: {root}: no wav.scp (nor train*/dev*/test* subfolders with one)")
    entries = []
    for folder in folders:
        split = folder.name if folder != root else None
        texts, spk = _kaldi_table(folder / "text"), _kaldi_table(folder / "utt2spk")
        for utt, where in _kaldi_table(folder / "wav.scp").items():
            # Pipes (`sox ... |`) and archives (`x.ark:12`) would need Kaldi tools: counted as bad.
            problem = "unsupported_audio" if where.endswith("|") or ".ark:" in where else None
            audio = where if Path(where).is_absolute() else str(folder / where)
            entries.append(Entry(clean_id(utt), audio, texts.get(utt), spk.get(utt, ""), split, problem))
    return entries


def entries_from_frame(frame, default_split: str | None, base: Path) -> list[Entry]:
    """Entries of a pandas DataFrame (parquet / HF): audio column = {bytes,path} dict, bytes or path."""
    columns = list(frame.columns)
    audio_col = next((c for c in AUDIO_KEYS if c in columns), None)
    text_col = next((c for c in TEXT_KEYS if c in columns), None)
    if audio_col is None or text_col is None:
        raise UserError(f"data.path: {base}: need an audio column ({', '.join(AUDIO_KEYS)}) and a text "
                        f"column ({', '.join(TEXT_KEYS)}); found {', '.join(map(str, columns))}")
    speaker_col = next((c for c in SPEAKER_KEYS if c in columns), None)
    id_col = next((c for c in ID_KEYS if c in columns), None)
    entries = []
    for i, row in enumerate(frame.to_dict("records")):
        audio = row[audio_col]
        if isinstance(audio, dict):
            audio = audio.get("bytes") or audio.get("path")
        if isinstance(audio, str) and not Path(audio).is_absolute():
            audio = str(base / audio)
        split = row.get("split") if isinstance(row.get("split"), str) and row.get("split") else default_split
        utt = row[id_col] if id_col else f"{canonical_split(split) if split else 'utt'}-{i:06d}"
        speaker = str(row[speaker_col]) if speaker_col and row[speaker_col] is not None else ""
        entries.append(Entry(clean_id(utt), audio or None, row[text_col], speaker, split))
    return entries


def read_parquet(path: Path) -> list[Entry]:
    """Entries of a .parquet file or of every *.parquet under a folder (split from the file name)."""
    import pandas

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files:
        raise UserError(f"data.path: {path}: no .parquet files found")
    entries = []
    for file in files:
        try:
            frame = pandas.read_parquet(file)
        except ImportError:
            raise UserError("source parquet needs a parquet engine: pip install pyarrow") from None
        split = next((n for n in (file.stem, file.parent.name) if canonical_split(n)), None)
        found = entries_from_frame(frame, split, file.parent)
        # Shards of one split number their rows from 0: keep ids unique across files.
        entries += [replace(e, utt_id=f"{file.stem}-{e.utt_id}") for e in found] if len(files) > 1 else found
    return entries


def read_hf(path: Path) -> list[Entry]:
    """Entries of a `datasets.save_to_disk` folder (Dataset or DatasetDict), audio not decoded."""
    try:
        import datasets
    except ImportError:
        raise UserError("source hf needs the `datasets` package: pip install datasets") from None
    loaded = datasets.load_from_disk(str(path))
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    entries = []
    for split, ds in parts:
        if "audio" in ds.column_names:
            ds = ds.cast_column("audio", datasets.Audio(decode=False))
        entries += entries_from_frame(ds.to_pandas(), split, path)
    return entries


READERS = {"manifest": read_manifest_source, "librispeech": read_librispeech, "kaldi": read_kaldi,
           "parquet": read_parquet, "hf": read_hf}
