"""python -m asrsweep.decoding.make_lexicon --tokenizer <tokenizer/k> --arpa <ngram/k>/lm.arpa --sentences <ngram/k>/sentences.txt --outdir <lexicon/k>

Spell the LM vocabulary with the run's sentencepiece pieces: `<outdir>/lexicon.txt`, one
`word<TAB>piece piece ...` line per unigram of the ARPA file (`<s>`, `</s>` skipped), plus `<unk>`
(spelled with the tokenizer's unknown piece, which the acoustic model never emits, so `<unk>` is
only reached through unk_score).  Pieces are written exactly as in tokens.txt.  The lexicon is
the word LM's vocabulary, so it covers exactly the text the n-gram LM was trained on.

Also `<outdir>/tokens.arpa`: the token-level n-gram of the open-vocabulary decoder
(`decode.decoder: lexicon_free`): the word LM's text encoded into the tokenizer's pieces,
estimated by asrsweep.decoding.kneser_ney (interpolated modified Kneser-Ney) with the word LM's
order (read from lm.arpa), over --sentences: the sentences train_ngram estimated lm.arpa from
(lm.txt and the `ngram.text` files as it gathered them), so both LMs see the same text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asrsweep.core.common import UserError, atomic_write, cli_main, record_command
from asrsweep.data import lm_text
from asrsweep.decoding import kneser_ney

SKIP = {"<s>", "</s>", "<unk>"}


def arpa_unigrams(path: Path) -> list[str]:
    """Words of the `\\1-grams:` section of an ARPA file, in file order."""
    words: list[str] = []
    inside = False
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.rstrip("\n")
                if line.startswith("\\1-grams:"):
                    inside = True
                elif inside and line.startswith("\\"):
                    break
                elif inside and line.strip():
                    words.append(line.split("\t")[1])
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; run asrsweep.decoding.train_ngram first") from None
    if not words:
        raise UserError(f"{path}: no \\1-grams section; not an ARPA file?")
    return words


def arpa_order(path: Path) -> int:
    """Highest order in the `\\data\\` header of an ARPA file (`ngram N=count` lines)."""
    orders = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("ngram ") and "=" in line:
                orders.append(int(line.split()[1].split("=")[0]))
            elif line.startswith("\\1-grams:"):
                break
    if not orders:
        raise UserError(f"{path}: no 'ngram N=' lines in the \\data\\ header; not an ARPA file?")
    return max(orders)


def piece_sentences(tokens, sentences):
    """Each non-empty sentence as its pieces (tokens.txt strings), space-joined."""
    for line in sentences:
        if line.strip():
            yield " ".join(tokens.pieces[i] for i in tokens.encode(line.strip()))


def write_token_lm(tokens, sentences, order: int, out: Path) -> None:
    """tokens.arpa: a Kneser-Ney n-gram over the pieces of the sentences."""
    model = kneser_ney.estimate(piece_sentences(tokens, sentences), order)
    with atomic_write(out) as tmp:
        kneser_ney.write_arpa(model, tmp)


def spell(tokens, word: str) -> list[str]:
    """Pieces (tokens.txt strings) of `word` encoded alone by the tokenizer."""
    return [tokens.pieces[i] for i in tokens.encode(word)]


def build_lexicon(tokens, words: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(entries, skipped): spellings of `words` plus `<unk>`; words spelled with `<unk>` are skipped."""
    unk_piece = "<unk>" if "<unk>" in tokens.pieces else None
    entries, skipped = [], []
    for word in words:
        if word in SKIP:
            continue
        pieces = spell(tokens, word)
        if not pieces or (unk_piece and unk_piece in pieces):
            skipped.append(word)
            continue
        entries.append((word, pieces))
    # flashlight's create_word_dict needs <unk>; a piece the model never emits keeps it inert.
    entries.append(("<unk>", [unk_piece or tokens.pieces[-1]]))
    return entries, skipped


def run(argv: list[str] | None = None) -> None:
    """Parse flags and write <outdir>/lexicon.txt."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", required=True, type=Path, help="dir with spm.model + tokens.txt")
    parser.add_argument("--arpa", required=True, type=Path, help="lm.arpa of the n-gram stage")
    parser.add_argument("--sentences", required=True, type=Path,
                        help="sentences.txt of the n-gram stage: the text lm.arpa was estimated from")
    parser.add_argument("--outdir", required=True, type=Path, help="writes lexicon.txt and tokens.arpa here")
    args = parser.parse_args(argv)
    from asrsweep.core.tokens import Tokens

    tokens = Tokens.load(args.tokenizer)
    entries, skipped = build_lexicon(tokens, arpa_unigrams(args.arpa))
    args.outdir.mkdir(parents=True, exist_ok=True)
    record_command(args.outdir)
    with atomic_write(args.outdir / "lexicon.txt") as tmp:
        tmp.write_text("".join(f"{w}\t{' '.join(p)}\n" for w, p in entries), encoding="utf-8")
    order = arpa_order(args.arpa)
    sentences = [line.strip() for line in lm_text.read_lines(args.sentences)]
    write_token_lm(tokens, sentences, order, args.outdir / "tokens.arpa")
    print(f"make_lexicon: tokens.arpa: {order}-gram over the pieces of {len(sentences)} sentences", flush=True)
    print(f"make_lexicon: {len(entries)} words ({len(skipped)} skipped, spelled with <unk>: "
          f"{' '.join(skipped[:10])})", flush=True)



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
