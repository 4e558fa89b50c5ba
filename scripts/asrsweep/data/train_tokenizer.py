"""python -m asrsweep.data.train_tokenizer --config <stage>/config.json --data <R/E/data/k> --outdir <R/E/tokenizer/k>

Trains a sentencepiece model (section `tokenizer`: type unigram|bpe|char, vocab_size) on the
transcripts of `<data>/train.tsv` and writes `spm.model` and `tokens.txt` (line 0 `<blank>`,
piece i at line i + 1). Single-threaded with a fixed seed, so the same input gives the same bytes.
"""


import argparse
import dataclasses
import io
from pathlib import Path

from asrsweep.core import tsv
from asrsweep.core.common import UserError, atomic_write, cli_main, load_section, open_outdir, write_text_atomic
from asrsweep.core.tokens import BLANK

TYPES = ("unigram", "bpe", "char")


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """Section `tokenizer` of the recipe."""

    type: str = "unigram"  # unigram | bpe | char
    vocab_size: int = 128  # sentencepiece pieces (CTC vocab = this + blank); ignored for char

    def __post_init__(self):
        if self.type not in TYPES:
            raise UserError(f"tokenizer.type: '{self.type}' is not one of {', '.join(TYPES)}")
        if not isinstance(self.vocab_size, int) or self.vocab_size < 2:
            raise UserError(f"tokenizer.vocab_size: {self.vocab_size!r}; use an integer >= 2")


def read_texts(manifest: Path) -> list[str]:
    """Transcripts (column `text`) of a data manifest, in file order."""
    if not manifest.is_file():
        raise UserError(f"{manifest}: file not found; run the data step first")
    rows = tsv.read_tsv(manifest, ["text"])
    if not rows:
        raise UserError(f"{manifest}: no rows")
    return [row["text"] for row in rows if row["text"].strip()]


def train_spm(texts: list[str], cfg: TokenizerConfig) -> bytes:
    """Train sentencepiece on `texts` in memory; return the serialised model.

    In memory on purpose: a file input would store its (temporary) path in the model and
    break byte-for-byte reproducibility.
    """
    import sentencepiece as spm

    spm.set_random_generator_seed(1)
    model = io.BytesIO()
    options = dict(
        sentence_iterator=iter(texts), model_writer=model, model_type=cfg.type,
        character_coverage=1.0, num_threads=1, shuffle_input_sentence=False,
        input_sentence_size=0, bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2,
    )
    # char: the alphabet decides the size; a fixed vocab_size would fail or pad.
    options.update(vocab_size=cfg.vocab_size, hard_vocab_limit=cfg.type != "char")
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as err:
        raise UserError(
            f"tokenizer.vocab_size: {cfg.vocab_size} failed for {len(texts)} sentences ({err}); "
            "lower vocab_size"
        ) from None
    return model.getvalue()


def run(argv: list[str] | None = None) -> None:
    """Parse flags, train the tokenizer, write spm.model and tokens.txt atomically."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.data.train_tokenizer", description=__doc__.split("\n\n")[1])
    parser.add_argument("--config", required=True, help="stage config.json (section tokenizer)")
    parser.add_argument("--data", required=True, help="data dir holding train.tsv")
    parser.add_argument("--outdir", required=True, help="output dir for spm.model, tokens.txt")
    args = parser.parse_args(argv)
    cfg = load_section(args.config, "tokenizer", TokenizerConfig)
    outdir = open_outdir(args.outdir, argv)
    texts = read_texts(Path(args.data) / "train.tsv")
    import sentencepiece as spm

    model = train_spm(texts, cfg)
    sp = spm.SentencePieceProcessor(model_proto=model)
    pieces = [BLANK] + [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    with atomic_write(outdir / "spm.model") as tmp:
        tmp.write_bytes(model)
    write_text_atomic(outdir / "tokens.txt", "\n".join(pieces) + "\n")
    print(f"tokenizer: {cfg.type}, {len(pieces)} CTC tokens (blank included) -> {outdir}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserErrors turned into one line on stderr and exit status 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
