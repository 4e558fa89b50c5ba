"""python -m asrsweep.rescoring.score_lm --lm LM --nbest NB --outdir OUT [--batch-size 64] [--threads N] [--device auto]

Score every hypothesis of the n-best lists NB/{split}.tsv with the LM of `asrsweep.rescoring.train_lm`
(the one LM/lm.json's `scorer` names: LM/tokenizer.json + LM/hf/ for the builtin LM, a pretrained
causal LM folder with its own tokenizer otherwise; `asrsweep.rescoring.causal_lm`) -> OUT/{split}.tsv:
utt_id rank lm_logprob, the natural-log probability of the sentence, put in the LM's case
(lm.text_case): sum over its tokens and the final </s>, given <s> (an empty hypothesis scores
log P(</s> | <s>)). Identical sentences are scored once; batches are sorted by length. Sentences
longer than the model's context are scored with a sliding window (each later window re-reads the
previous half window as context). --device auto uses CUDA when available, else CPU.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network, even by accident

import torch

from asrsweep.acoustic.forward import DEVICES, resolve_device, use_threads
from asrsweep.core import tsv
from asrsweep.core.common import UserError, cli_main, open_outdir
from asrsweep.rescoring.causal_lm import Vocab, apply_case, load_scorer

SPLITS = ("dev", "test")


def windows(ids: list[int], context: int) -> list[tuple[list[int], int]]:
    """Split `<s> ... </s>` ids into (window, first scored position) pieces of ≤ context tokens.

    Position p of a window is scored as a prediction from positions < p; together the pieces
    score every token after <s> exactly once.
    """
    if len(ids) <= context:
        return [(ids, 1)]
    hop = max(1, context // 2)
    pieces, start, scored_to = [(ids[:context], 1)], 0, context
    while scored_to < len(ids):
        start = scored_to - (context - hop)
        pieces.append((ids[start : start + context], scored_to - start))
        scored_to = start + context
    return pieces


@torch.no_grad()
def score_windows(model, pieces: list[tuple[list[int], int]], batch_size: int, device: str, pad: int) -> list[float]:
    """Sum of log P(token | prefix) over scored positions of each piece -> list [len(pieces)]."""
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i][0]))
    out = [0.0] * len(pieces)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(pieces[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        keep = torch.zeros((len(idx), width), dtype=torch.bool)  # [batch, width]: scored targets
        mask = torch.zeros((len(idx), width), dtype=torch.bool)  # [batch, width]: real tokens
        for row, i in enumerate(idx):
            seq, first = pieces[i]
            ids[row, : len(seq)] = torch.tensor(seq)
            keep[row, first : len(seq)] = True
            mask[row, : len(seq)] = True
        ids, keep, mask = ids.to(device), keep.to(device), mask.long().to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits.float()  # [batch, width, vocab]
        logp = torch.log_softmax(logits[:, :-1], dim=-1)
        target = logp.gather(2, ids[:, 1:, None])[:, :, 0]  # [batch, width-1]
        sums = (target * keep[:, 1:]).sum(dim=1).cpu().tolist()
        for row, i in enumerate(idx):
            out[i] = sums[row]
    return out


def score_sentences(model, vocab: Vocab, context: int, sentences: list[str], batch_size: int, device: str,
                    text_case: str = "as_is") -> dict[str, float]:
    """Natural-log probability of each distinct sentence (incl. </s>), read in case `text_case`."""
    unique = sorted(set(sentences))
    encoded = vocab.encode([apply_case(s, text_case) for s in unique])
    pieces, owner = [], []
    for k, ids in enumerate(encoded):
        for piece in windows(ids, context):
            pieces.append(piece)
            owner.append(k)
    totals = [0.0] * len(unique)
    for k, value in zip(owner, score_windows(model, pieces, batch_size, device, vocab.pad)):
        totals[k] += value
    return dict(zip(unique, totals))


def read_nbest(path: Path) -> list[dict]:
    """Rows of an n-best TSV as dicts of strings (empty hypotheses stay empty strings)."""
    return tsv.read_tsv(path, ["utt_id", "rank", "hyp"])


def run(argv: list[str] | None = None) -> dict:
    """Score every n-best file in --nbest; returns {split: number of rows}."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.rescoring.score_lm", description=__doc__.splitlines()[0])
    parser.add_argument("--lm", required=True, type=Path, help="train_lm output folder")
    parser.add_argument("--nbest", required=True, type=Path, help="folder of n-best {split}.tsv files")
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto", help=DEVICES)
    args = parser.parse_args(argv)
    use_threads(args.threads)
    device = resolve_device(args.device)
    open_outdir(args.outdir, argv, "score_lm")
    files = [args.nbest / f"{split}.tsv" for split in SPLITS if (args.nbest / f"{split}.tsv").is_file()]
    if not files:
        raise UserError(f"{args.nbest}: no n-best dev.tsv or test.tsv (written by asrsweep.decoding.decode_frozen)")
    model, vocab, context, text_case = load_scorer(args.lm, device)
    counts = {}
    for path in files:
        start = time.perf_counter()
        rows = read_nbest(path)
        scores = score_sentences(model, vocab, context, [r["hyp"] for r in rows], args.batch_size, device, text_case)
        tsv.write_tsv(args.outdir / path.name, ["utt_id", "rank", "lm_logprob"],
                      ({**r, "lm_logprob": f"{scores[r['hyp']]:.6f}"} for r in rows))
        counts[path.stem] = len(rows)
        print(f"{path.name}: {len(rows)} hypotheses ({len(scores)} distinct) on {device} "
              f"in {time.perf_counter() - start:.1f}s", flush=True)
    return counts


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
