"""Shared plumbing for the step CLIs: user errors, atomic writes, strict config sections.

Not a step itself; every `python -m asrsweep.<stage>.<step>` imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import signal
import sys
import tempfile
import typing
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """A problem with the user's input: printed as one line, no traceback, exit status 2."""


def cli_main(run: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> Any:
    """Call `run(argv)`, turning a `UserError` into one line on stderr and exit status 2."""
    if hasattr(signal, "SIGPIPE"):  # `asrsweep explain ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return run(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    Readers never see a half-written file, and a failure leaves the old file (if any) intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    tmp_path.chmod(0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def torch_save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` to `path` atomically (temp file + fsync + rename)."""
    import torch

    with atomic_write(path) as tmp:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, failing with a `UserError` that names the file."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None


def file_digest(path: str | os.PathLike, algorithm: str = "sha1") -> str:
    """Hex digest of a file's bytes, read in blocks (never the whole file in memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


def from_mapping(cls: type[T], data: dict, where: str) -> T:
    """Build dataclass `cls` from `data`, recursing into nested dataclass fields.

    Unknown keys are errors (a typo must never become a silent default).
    """
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        sub = hints.get(name)
        sub = sub if isinstance(sub, type) and dataclasses.is_dataclass(sub) else None
        kwargs[name] = from_mapping(sub, value, f"{where}.{name}") if sub and isinstance(value, dict) else value
    return cls(**kwargs)


def load_section(config_path: str | os.PathLike, section: str, cls: type[T]) -> T:
    """Read section `section` of the stage config JSON at `config_path` into dataclass `cls`."""
    config = read_json(config_path)
    if section not in config:
        raise UserError(f"{config_path}: missing section '{section}'")
    return from_mapping(cls, config[section], f"{config_path}: {section}")


def record_command(outdir: str | os.PathLike, argv: list[str] | None = None) -> Path:
    """Write `<outdir>/command.sh`: the exact command of this step, runnable by hand."""
    argv = list(sys.argv if argv is None else argv)
    prog = f"python -m {_module_name(argv)}"
    script = (
        "#!/usr/bin/env bash\n"
        "# Re-run this step by hand (written by the step itself when it ran).\n"
        "set -euo pipefail\n"
        f"cd {shlex.quote(os.getcwd())}\n"
        f"{prog} {' '.join(shlex.quote(a) for a in argv[1:])}\n"
    )
    out = Path(outdir) / "command.sh"
    write_text_atomic(out, script)
    out.chmod(0o755)
    return out


def open_outdir(outdir: str | os.PathLike, argv: list[str] | None, argv0: str | None = None) -> Path:
    """Create `outdir` and write its command.sh; returns `outdir` as a Path.

    `argv` is what the step's `run` got: None records this process's own sys.argv; a list is
    recorded after `argv0` (default sys.argv[0]), whose stem names the module where `__main__`
    has no spec (an in-process call).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    record_command(outdir, None if argv is None else [sys.argv[0] if argv0 is None else argv0, *argv])
    return outdir


def _module_name(argv: list[str]) -> str:
    """The dotted module name of the running step (`asrsweep.acoustic.train` for
    .../asrsweep/acoustic/train.py)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        return spec.name
    if not argv:
        return "asrsweep"
    path = Path(argv[0])
    parts = path.with_suffix("").parts
    if "asrsweep" in parts:  # a file of the package: its dotted path from the package down
        return ".".join(parts[len(parts) - 1 - parts[::-1].index("asrsweep"):])
    return f"asrsweep.{path.stem}"
