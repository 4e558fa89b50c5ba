"""Pretrained models a config names (`model.pretrained`): a local folder, or a Hugging Face hub
id resolved from the local cache. Library module (no CLI), used by `asrsweep.experiment.sweep`
(checked and fingerprinted when an experiment is expanded, so `asrsweep plan` and `snakemake -n`
refuse a missing model in one line) and by `asrsweep.acoustic.hf_encoder` (loading in the job).

Offline by default: nothing is downloaded unless the environment sets ASRSWEEP_HUB_ONLINE=1
(then a hub id missing from the cache is downloaded when the experiment is expanded, i.e. on
the machine that runs `asrsweep plan` or snakemake, before any job is submitted).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from asrsweep.core.common import UserError

ONLINE_ENV = "ASRSWEEP_HUB_ONLINE"
# transformers model types whose encoder `model.encoder: hf` fine-tunes with a CTC head
# (waveform input, `_get_feat_extract_output_lengths`); each is covered by tests/test_hf_encoder.py.
ENCODER_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
REFUSED_TYPES = {"whisper": "the Whisper encoder takes exactly 3000 mel frames (30 s); padding every "
                            "utterance to 30 s is not supported; use a wav2vec2/HuBERT/WavLM/data2vec-audio model"}


def hub_online() -> bool:
    """True when the user allowed downloads (ASRSWEEP_HUB_ONLINE=1)."""
    return os.environ.get(ONLINE_ENV, "0") == "1"


def offline_by_default() -> None:
    """Set HF_HUB_OFFLINE=1 unless downloads are allowed; call before importing transformers."""
    if not hub_online():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def looks_like_path(value: str) -> bool:
    """A folder rather than a hub id (`owner/name` or `name`): absolute, ./, ../, ~ or deeper."""
    return value.startswith(("/", ".", "~")) or value.count("/") > 1 or Path(value).expanduser().exists()


def resolve(value: str, setting: str, where: str, download: bool | None = None) -> Path:
    """The local folder of `value` (a folder, or a hub id from the cache); one-line UserError if absent.

    `download` (default: `hub_online()`) lets a hub id missing from the cache be fetched; jobs pass
    False, so they read exactly what the expansion found (a later hub revision is never fetched mid-sweep).
    """
    download = hub_online() if download is None else download
    if looks_like_path(value):
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise UserError(f"{where}: {setting}: {value}: no such folder (looked in {folder.absolute().parent}); "
                            "set it to a downloaded model folder (config.json + weights) or a cached hub id")
        return folder
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE

    try:
        return Path(snapshot_download(value, local_files_only=not download))
    except Exception as err:  # LocalEntryNotFoundError, RepositoryNotFoundError, network errors
        how = ("check the id" if download else
               f"download it first (hf download {value}) or set {ONLINE_ENV}=1 to allow downloads")
        raise UserError(f"{where}: {setting}: {value}: not a folder and not in the Hugging Face cache "
                        f"{HF_HUB_CACHE} ({type(err).__name__}); {how}") from None


def model_type(folder: Path, setting: str, where: str) -> str:
    """`model_type` of a transformers folder's config.json; one-line UserError if it has none."""
    try:
        kind = json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as err:
        raise UserError(f"{where}: {setting}: {folder}: no readable config.json ({type(err).__name__}); "
                        "not a transformers model folder") from None
    return str(kind)


def resolve_encoder(value: str, setting: str, where: str, download: bool | None = None) -> Path:
    """`resolve`, then check the folder holds an encoder `model.encoder: hf` supports."""
    folder = resolve(value, setting, where, download)
    kind = model_type(folder, setting, where)
    if kind in REFUSED_TYPES:
        raise UserError(f"{where}: {setting}: {value}: model type {kind}: {REFUSED_TYPES[kind]}")
    if kind not in ENCODER_TYPES:
        raise UserError(f"{where}: {setting}: {value}: model type {kind} is not supported; "
                        f"use one of {', '.join(ENCODER_TYPES)}")
    return folder
