"""Files and folders a config names: checked before anything runs, and fingerprinted so that a
stage whose input changed on disk runs again.

Library module (no CLI), used by `asrsweep.experiment.sweep` (stage keys, `asrsweep plan`,
`snakemake -n`) and by `python -m asrsweep.results.run_result` (provenance).

A fingerprint is a short hash of what the input holds: a file's content (manifests and text
are small next to audio), a folder's listing of (relative path, size, modification time), and
for a manifest the size and modification time of every audio file it names. Editing one
transcript changes the manifest's hash; re-encoding an audio file changes its size or time.

What a file holds (its digest, and a manifest's audio paths) is cached on disk, keyed by the
file's resolved path, size and mtime_ns: every job's `write_config` expands the experiment again,
and must not re-read a large corpus manifest, LM text or init_from checkpoint each time. A file
whose size or mtime differ is read again; a folder is fingerprinted from its listing alone (no
content is read), and a manifest's audio files are stat-ed every time, so neither is cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from asrsweep.core.common import UserError, file_digest, write_text_atomic
from asrsweep.core.manifest import AUDIO_KEYS, manifest_rows

MANIFEST_SUFFIXES = (".tsv", ".jsonl", ".json")
# A file modified this recently is not cached: on a filesystem with coarse timestamps a second
# write within the same tick would keep size and mtime, and its change would go unseen.
RACY_NS = 2_000_000_000


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
    content = file_content(path) if path.is_file() else None
    for name, size, stamp in _entries(path, content):
        digest.update(f"{name}\t{size}\t{stamp}\n".encode())
        files, total = files + 1, total + size
    if content:
        digest.update(content["sha1"].encode())
    return {"path": str(path), "sha1": digest.hexdigest()[:16], "files": files, "bytes": total}


def cache_dir() -> Path:
    """~/.cache/asrsweep/fingerprints ($XDG_CACHE_HOME respected).

    In the home folder, not under results: the planning commands (`asrsweep plan`, `explain`,
    the jobs' `write_config`) expand an experiment without a results folder, what a file holds
    does not depend on the experiment that names it, and a cluster's home is usually shared by
    its nodes, so every job of every results folder finds the entry.
    """
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asrsweep" / "fingerprints"


def file_content(path: Path) -> dict:
    """{"sha1": digest of the bytes, "audio": [paths a manifest names]} of file `path`, cached.

    The entry is used only while the file's resolved path, size and mtime_ns are those it was
    read with; otherwise the file is read again. An unwritable cache only costs the reading.
    """
    resolved = path.resolve()
    stat = resolved.stat()
    key = {"path": str(resolved), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    entry_file = cache_dir() / f"{hashlib.sha1(key['path'].encode()).hexdigest()}.json"
    try:
        entry = json.loads(entry_file.read_text())
        if entry["key"] == key:
            return entry["content"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no entry, or an unreadable one: read the file
    content = {"sha1": file_digest(resolved)}
    if path.suffix in MANIFEST_SUFFIXES:
        content["audio"] = sorted(set(_manifest_audio(path)))
    if time.time_ns() - stat.st_mtime_ns >= RACY_NS:
        try:
            write_text_atomic(entry_file, json.dumps({"key": key, "content": content}))
        except OSError:
            pass
    return content


def _entries(path: Path, content: dict | None):
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
    for audio in content.get("audio", ()):
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
