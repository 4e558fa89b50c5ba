"""python bench/decode_sweep.py [--utts 150] [--lm-sentences 20000] [--threads 2] [--beam 50] [--order 4]

Decode-sweep throughput on a synthetic but demo-sized problem: grammar sentences, a 256-piece
sentencepiece vocabulary, a 4-gram from asrsweep.decoding.kneser_ney, peaky CTC emissions (≈ 25 frames/s,
random confusions) for the dev utterances, and the recommended 6 × 4 grid (lm_weight × word_score).
Prints, side by side from one run:
  1. decode_sweep's machinery (asrsweep.decoding.decode_sweep.run_settings, 1 process) vs calling the
     decoder directly in a plain loop: the overhead ratio (goal: within 15 %);
  2. the same sweep with --threads workers (forked, sharing LM and trie);
  3. one-pass sweep vs a per-setting decode job that re-runs the acoustic model and reloads
     the LM for every setting (model forward timed with asrsweep.acoustic.model, Conformer defaults).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from asrsweep.decoding.decode_sweep import run_settings  # noqa: E402
from asrsweep.decoding.decoder import Setting  # noqa: E402
from asrsweep.decoding.sweep_space import DecodeConfig, DecodeSweepSpec, sweep_settings  # noqa: E402
from asrsweep.decoding.decoder import Decoder  # noqa: E402
from asrsweep.decoding.kneser_ney import estimate, write_arpa  # noqa: E402
from asrsweep.decoding.make_lexicon import arpa_unigrams, build_lexicon  # noqa: E402


def build_world(workdir: Path, n_lm: int, n_utts: int, order: int):
    """Tokenizer, LM, lexicon and dev texts in `workdir`; returns (Tokens, paths, dev texts)."""
    import sentencepiece as spm

    from asrsweep.data import grammar
    from asrsweep.core.tokens import Tokens

    dev = grammar.unique_sentences(7, n_utts)
    lm_text = [s for s in grammar.sentences(1, n_lm) if s not in set(dev)]
    (workdir / "text.txt").write_text("\n".join(lm_text[:3000]) + "\n")
    spm.SentencePieceTrainer.train(input=str(workdir / "text.txt"), model_prefix=str(workdir / "spm"),
                                   vocab_size=256, model_type="unigram", character_coverage=1.0,
                                   minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=str(workdir / "spm.model"))
    pieces = ["<blank>"] + [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    (workdir / "tokens.txt").write_text("".join(p + "\n" for p in pieces), encoding="utf-8")
    tokens = Tokens.load(workdir)
    t0 = time.perf_counter()
    write_arpa(estimate(lm_text, order), workdir / "lm.arpa")
    print(f"kneser_ney: {order}-gram on {len(lm_text)} sentences in {time.perf_counter() - t0:.1f}s")
    entries, _ = build_lexicon(tokens, arpa_unigrams(workdir / "lm.arpa"))
    (workdir / "lexicon.txt").write_text("".join(f"{w}\t{' '.join(p)}\n" for w, p in entries))
    return tokens, dev


def fake_emissions(tokens, texts: list[str], seed: int = 0) -> list[np.ndarray]:
    """Peaky CTC log-probs [T, V]: each piece on one frame (15 % confused), 1-3 blank frames."""
    rng = np.random.default_rng(seed)
    out = []
    for text in texts:
        rows = []
        for tid in tokens.encode(text):
            for frame in [tid] + [0] * int(rng.integers(1, 4)):
                logits = rng.normal(0.0, 1.0, tokens.vocab_size)
                top = frame if frame == 0 or rng.random() > 0.15 else int(rng.integers(1, tokens.vocab_size))
                logits[top] += 8.0
                logits[frame] += 5.0 if top != frame else 0.0
                rows.append(logits - np.logaddexp.reduce(logits))
        out.append(np.ascontiguousarray(np.array(rows, dtype=np.float32)))
    return out


def direct_loop(decoder: Decoder, settings, logprobs) -> float:
    """Seconds to decode every setting × utterance by calling the decoder in a plain loop."""
    start = time.perf_counter()
    for s in settings:
        search = decoder.search(s)
        for lp in logprobs:
            decoder.decode(search, lp)
    return time.perf_counter() - start


def forward_seconds(n_utts: int, frames: list[int]) -> float:
    """Seconds for one acoustic-model pass over the dev set (asrsweep.acoustic.model, default Conformer)."""
    import torch

    from asrsweep.acoustic.model import build_model

    torch.manual_seed(0)
    model = build_model({"n_mels": 80, "vocab_size": 257}).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, n_utts, 16):
            lens = torch.tensor([f * 4 for f in frames[i:i + 16]])
            model(torch.randn(len(lens), int(lens.max()), 80), lens)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--utts", type=int, default=150)
    p.add_argument("--lm-sentences", type=int, default=20000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--beam", type=int, default=50)
    p.add_argument("--order", type=int, default=4)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        tokens, dev = build_world(workdir, args.lm_sentences, args.utts, args.order)
        logprobs = fake_emissions(tokens, dev)
        t0 = time.perf_counter()
        decoder = Decoder(workdir / "lexicon.txt", workdir / "lm.arpa", workdir / "tokens.txt")
        load = time.perf_counter() - t0
    cfg = DecodeConfig(Setting(beam_size=args.beam), DecodeSweepSpec())
    settings = sweep_settings(cfg, "bench")
    work = len(settings) * len(logprobs)
    print(f"{len(logprobs)} utts (mean {np.mean([len(x) for x in logprobs]):.0f} frames) × "
          f"{len(settings)} settings, beam {args.beam}, beam_size_token {cfg.beam_size_token}; "
          f"LM+trie load {load:.2f}s")
    direct = direct_loop(decoder, settings, logprobs)
    t0 = time.perf_counter()
    run_settings(decoder, settings, logprobs, 1)
    sweep1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_settings(decoder, settings, logprobs, args.threads)
    sweep_t = time.perf_counter() - t0
    print(f"direct loop        : {direct:6.2f}s  {work / direct:7.1f} utt·settings/s")
    print(f"decode_sweep (1 p) : {sweep1:6.2f}s  {work / sweep1:7.1f} utt·settings/s  "
          f"overhead {sweep1 / direct - 1:+.1%} (goal within 15%)")
    print(f"decode_sweep ({args.threads} p) : {sweep_t:6.2f}s  {work / sweep_t:7.1f} utt·settings/s  "
          f"speed-up {sweep1 / sweep_t:.2f}x over 1 process")
    fwd = forward_seconds(len(logprobs), [len(x) for x in logprobs])
    per_job = len(settings) * (fwd + load) + sweep1
    one_pass = fwd + load + sweep1
    print(f"model forward (dev) : {fwd:6.2f}s per pass; per-setting jobs (forward + LM load each): "
          f"{per_job:.1f}s vs one pass {one_pass:.1f}s -> {per_job / one_pass:.2f}x (same 1 core)")


if __name__ == "__main__":
    random.seed(0)
    main()
