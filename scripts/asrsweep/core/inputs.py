"""Files and folders a config names: checked before anything runs, and fingerprinted so that a
stage whose input changed on disk runs again.

Library module (no CLI), used by `asrsweep.experiment.sweep` (stage keys, `asrsweep plan`,
`snakemake -n`) and by `python -m asrsweep.results.run_result` (provenance).

A fingerprint is a short hash of what the input holds: a file's content (manifests and text
are small next to audio), a folder's listing of (relative path, size, modification time), and
for a manifest the size and modification time of every audio file it names. Editing one
transcript changes the manifest's hash; re-encoding an audio file changes its size or time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from asrsweep.core.common import UserError, file_digest
from asrsweep.core.manifest import AUDIO_KEYS, manifest_rows

MANIFEST_SUFFIXES = (".tsv", ".jsonl", ".json")


def check_exists(path: str, setting: str, where: str, what: str) -> Path:
    """`path` as a Path; a missing one is one line naming the setting and how to fix it."""
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise UserError(f"{where}: {setting}: {path}: no such file or folder (looked in "
                        f"{resolved.absolute().parent}); set it to an existing {what}")
    return resolved


def fingerprint(path: Path) -> dict:
    """{"path", "sha1", "files", "bytes"} describing what `path` holds now."""
    digest = hashlib.sha1()
    files = total = 0
    for name, size, stamp in _entries(path):
        digest.update(f"{name}\t{size}\t{stamp}\n".encode())
        files, total = files + 1, total + size
    if path.is_file():
        digest.update(file_digest(path).encode())
    return {"path": str(path), "sha1": digest.hexdigest()[:16], "files": files, "bytes": total}


def _entries(path: Path):
    """(name, size, mtime_ns) of the files whose change must be noticed, in a stable order."""
    if path.is_dir():
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                full = Path(root) / name
                stat = full.stat()
                yield str(full.relative_to(path)), stat.st_size, stat.st_mtime_ns
        return
    stat = path.stat()
    yield path.name, stat.st_size, 0  # the content hash stands for the file itself
    if path.suffix in MANIFEST_SUFFIXES:
        for audio in sorted(set(_manifest_audio(path))):
            full = Path(audio) if Path(audio).is_absolute() else path.parent / audio
            try:
                stat = full.stat()
            except OSError:
                yield audio, -1, 0  # missing: data.prepare_corpus counts it as bad audio
                continue
            yield audio, stat.st_size, stat.st_mtime_ns


def _manifest_audio(path: Path) -> list[str]:
    """The audio paths a manifest names (read by the same rules as data.prepare_corpus)."""
    out = []
    for row in manifest_rows(path):
        key = next((k for k in AUDIO_KEYS if row.get(k)), None)
        if key and isinstance(row[key], str):
            out.append(row[key])
    return out
