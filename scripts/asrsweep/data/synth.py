"""Speech synthesis with espeak-ng (ctypes over the `espeakng-loader` wheel); a library, not a step.

Used by `python -m asrsweep.data.prepare_demo --config C --outdir D`.

espeak-ng keeps state between utterances and its output is reproducible only when the same
utterances are synthesised in the same order in a fresh process (measured on espeak-ng 1.52).
So the work is cut into fixed chunks (independent of the number of workers) and every chunk runs in its own
freshly spawned process (`maxtasksperchild=1`): the audio depends on the chunk, never on the
scheduling.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ESPEAK_RATE_HZ = 22050
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE, PARAM_PITCH = 1, 3
# Utterances per fresh process: fixed so the bytes never depend on the worker count.
CHUNK_SIZE = 100

CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: espeak voice + variant, speaking rate (words/min) and pitch (0–100)."""

    voice: str
    variant: str
    speed: int
    pitch: int

    @property
    def name(self) -> str:
        """Speaker id as written in the manifests, e.g. `en-us+m3-s160-p40`."""
        return f"{self.voice}+{self.variant}-s{self.speed}-p{self.pitch}"


@dataclass(frozen=True)
class Job:
    """One utterance to synthesise into `path` (a 16 kHz mono int16 WAV)."""

    path: str
    text: str
    speaker: Speaker


class Espeak:
    """A synchronous espeak-ng instance in this process; `synth(text) -> int16 [samples] @ 22050 Hz`."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        data = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate != ESPEAK_RATE_HZ:
            raise RuntimeError(f"espeak_Initialize returned {rate}, expected {ESPEAK_RATE_HZ}")
        self._chunks: list[np.ndarray] = []
        self._callback = CALLBACK(self._collect)  # kept referenced: espeak holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n_samples, _events) -> int:
        """espeak's callback: copy `n_samples` int16 samples out of its buffer; 0 = continue."""
        if n_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0

    def set_speaker(self, speaker: Speaker) -> None:
        """Select voice+variant, then rate and pitch (a voice change resets the parameters)."""
        if self.lib.espeak_SetVoiceByName(f"{speaker.voice}+{speaker.variant}".encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {speaker.voice}+{speaker.variant}")
        self.lib.espeak_SetParameter(PARAM_RATE, speaker.speed, 0)
        self.lib.espeak_SetParameter(PARAM_PITCH, speaker.pitch, 0)

    def synth(self, text: str, seed: int) -> np.ndarray:
        """Synthesise `text` with the current speaker; returns int16 [samples] at 22050 Hz."""
        self._chunks = []
        self.lib.espeak_ng_SetRandSeed(seed)
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        self.lib.espeak_Synth(buf, len(buf), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def _run_chunk(args: tuple[list[Job], int]) -> list[float]:
    """Worker: synthesise one chunk in order, write 16 kHz WAVs; returns durations in seconds."""
    import soundfile

    from asrsweep.data.audio import TARGET_RATE, resample

    jobs, seed = args
    engine = Espeak()
    durations = []
    for job in jobs:
        engine.set_speaker(job.speaker)
        audio = engine.synth(job.text, seed).astype(np.float32) / 32768.0
        audio = resample(audio, ESPEAK_RATE_HZ, TARGET_RATE)
        pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
        Path(job.path).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(job.path, pcm, TARGET_RATE, subtype="PCM_16")
        durations.append(len(pcm) / TARGET_RATE)
    return durations


def synthesize(jobs: list[Job], seed: int, workers: int = 2) -> list[float]:
    """Synthesise all `jobs` (fixed chunks, one fresh spawned process each); durations in seconds.

    Bit-exact for a given job list and seed, whatever `workers` is.
    """
    chunks = [(jobs[i : i + CHUNK_SIZE], seed) for i in range(0, len(jobs), CHUNK_SIZE)]
    if not chunks:
        return []
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes=max(1, min(workers, len(chunks))), maxtasksperchild=1) as pool:
        results = pool.map(_run_chunk, chunks, chunksize=1)
    return [d for chunk in results for d in chunk]
