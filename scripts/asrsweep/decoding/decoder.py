"""CTC decoding with flashlight-text (wav2letter's beam search) and KenLM; greedy decoding.

Library module (no CLI), used by `python -m asrsweep.decoding.decode_sweep --config C ...` and
`asrsweep.decoding.decode_frozen`.

`Decoder(lexicon, arpa, tokens)` loads the KenLM model and builds the lexicon trie ONCE; each
sweep setting only builds a new flashlight decoder object around them (cheap), so a sweep over
S settings costs S beam searches, not S model loads.  The `lexicon_free` decoder searches over
pieces with the token-level n-gram `tokens.arpa` that make_lexicon writes beside lexicon.txt
(loaded on first use, so a lexicon-only sweep never reads it).  The CTC blank (column 0)
doubles as the silence token: sentencepiece marks word starts with "▁" inside pieces, so there
is no separate word-separator token, and between words the beam stays at the trie root on
blank frames.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrsweep.core.common import UserError
from asrsweep.core.tokens import ctc_collapse, pieces_to_text, read_token_table

DECODERS = ("lexicon", "lexicon_free")


@dataclass(frozen=True)
class Setting:
    """One decoder setting: wav2letter's knobs. The one definition of them: `KNOBS`, the
    conversions of `make_setting`, section `decode` and the sweep tables all follow these fields.

    decoder: "lexicon" (LexiconDecoder + KenLM word LM) or "lexicon_free" (LexiconFreeDecoder over
    pieces + the token-level n-gram tokens.arpa: open vocabulary; lm_weight weights the token LM;
    word_score and unk_score are unused: flashlight 0.0.7's lexicon-free search has no word term).
    """

    decoder: str = "lexicon"
    lm_weight: float = 1.5
    word_score: float = 1.0
    unk_score: float = float("-inf")
    sil_score: float = 0.0
    beam_size: int = 50
    beam_size_token: int = 32
    beam_threshold: float = 25.0
    log_add: bool = False

    def as_dict(self) -> dict:
        """Decoder + knobs; -inf is written as the string "-inf" (valid JSON)."""
        out = dataclasses.asdict(self)
        return {k: ("-inf" if isinstance(v, float) and math.isinf(v) and v < 0 else v) for k, v in out.items()}


_TYPES = typing.get_type_hints(Setting)
KNOBS = tuple(f.name for f in dataclasses.fields(Setting) if f.name != "decoder")
INT_KNOBS = tuple(k for k in KNOBS if _TYPES[k] is int)


def _convert(kind: type, value):
    """`value` as a `kind` knob value: "true"/"1" for booleans, "-inf" for floats allowed."""
    if kind is bool:
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return kind(value)


def make_setting(values: dict, where: str) -> Setting:
    """A `Setting` from a mapping (decoder, knobs), type-checked; strings like "-inf" allowed."""
    unknown = sorted(set(values) - set(_TYPES))
    if unknown:
        raise UserError(f"{where}: unknown decode key(s) {', '.join(unknown)}; known: decoder, {', '.join(KNOBS)}")
    kw = {}
    for name, value in values.items():
        try:
            kw[name] = _convert(_TYPES[name], value)
        except (TypeError, ValueError):
            raise UserError(f"{where}: {name}: {value!r} is not a valid value") from None
    setting = Setting(**kw)
    if setting.decoder not in DECODERS:
        raise UserError(f"{where}: decoder: {setting.decoder!r}; use one of {', '.join(DECODERS)}")
    if setting.beam_size < 1 or setting.beam_size_token < 1:
        raise UserError(f"{where}: beam_size and beam_size_token must be >= 1")
    return setting


@dataclass
class Hypothesis:
    """One decoded hypothesis: words, CTC token ids (collapsed), and flashlight's scores."""

    words: list[str]
    tokens: list[int]
    score: float = 0.0
    am_score: float = 0.0
    lm_score: float = 0.0  # KenLM log10, as flashlight accumulates it

    @property
    def text(self) -> str:
        return " ".join(self.words)


def greedy(logprobs: np.ndarray, tokens: list[str]) -> Hypothesis:
    """Best-path CTC decoding of log-probs [T, V]."""
    best = ctc_collapse(np.argmax(logprobs, axis=1)) if len(logprobs) else []
    am = float(np.max(logprobs, axis=1).sum()) if len(logprobs) else 0.0
    return Hypothesis(pieces_to_text(tokens[i] for i in best).split(), best, am, am, 0.0)


class Decoder:
    """KenLM + lexicon trie loaded once; `search(setting)` makes a beam search for one setting.

    lexicon: lexicon.txt (`word<TAB>pieces`), arpa: lm.arpa, tokens: tokens.txt (blank at 0).
    """

    def __init__(self, lexicon: str | Path, arpa: str | Path, tokens: str | Path,
                 token_arpa: str | Path | None = None):
        from flashlight.lib.text.decoder import SmearingMode, Trie
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary, create_word_dict, load_words

        self.tokens = read_token_table(tokens)
        self.token_arpa = Path(token_arpa) if token_arpa else Path(lexicon).with_name("tokens.arpa")
        self._token_lm = None
        for path in (lexicon, arpa):
            if not Path(path).is_file():
                raise UserError(f"{path}: file not found")
        self.token_dict = Dictionary(self.tokens)
        lex = load_words(str(lexicon))
        if "<unk>" not in lex:
            raise UserError(f"{lexicon}: no <unk> entry; rerun asrsweep.decoding.make_lexicon")
        self.word_dict = create_word_dict(lex)
        self.words = frozenset(lex) - {"<unk>"}  # what the lexicon decoder can output
        self.lm = KenLM(str(arpa), self.word_dict)
        self.unk = self.word_dict.get_index("<unk>")
        self.trie = Trie(len(self.tokens), 0)
        start = self.lm.start(False)
        for word, spellings in lex.items():
            wid = self.word_dict.get_index(word)
            _, score = self.lm.score(start, wid)
            for spelling in spellings:
                ids = [self._token_index(lexicon, word, p) for p in spelling]
                self.trie.insert(ids, wid, score)
        # MAX smearing: a partial word carries its best completion's unigram score (wav2letter).
        self.trie.smear(SmearingMode.MAX)

    def _token_index(self, lexicon, word: str, piece: str) -> int:
        """Column of `piece` in tokens.txt, or a UserError naming the lexicon line."""
        if not self.token_dict.contains(piece):
            raise UserError(f"{lexicon}: word {word!r} uses piece {piece!r} not in tokens.txt; "
                            "lexicon and tokenizer come from different runs?")
        return self.token_dict.get_index(piece)

    def search(self, setting: Setting):
        """A flashlight decoder for `setting`, sharing this object's KenLM and trie."""
        from flashlight.lib.text.decoder import (CriterionType, LexiconDecoder, LexiconDecoderOptions,
                                                 LexiconFreeDecoder, LexiconFreeDecoderOptions)

        if setting.decoder == "lexicon_free":
            opts = LexiconFreeDecoderOptions(setting.beam_size, setting.beam_size_token,
                                             setting.beam_threshold, setting.lm_weight, setting.sil_score,
                                             setting.log_add, CriterionType.CTC)
            return LexiconFreeDecoder(opts, self.token_lm(), 0, 0, [])
        opts = LexiconDecoderOptions(setting.beam_size, setting.beam_size_token, setting.beam_threshold,
                                     setting.lm_weight, setting.word_score, setting.unk_score,
                                     setting.sil_score, setting.log_add, CriterionType.CTC)
        return LexiconDecoder(opts, self.trie, self.lm, 0, 0, self.unk, [], False)

    def token_lm(self):
        """KenLM over pieces (tokens.arpa; indices = tokens.txt columns), loaded once."""
        if self._token_lm is None:
            from flashlight.lib.text.decoder.kenlm import KenLM

            if not self.token_arpa.is_file():
                raise UserError(f"{self.token_arpa}: file not found; decoder lexicon_free needs the token "
                                "n-gram that asrsweep.decoding.make_lexicon writes beside lexicon.txt")
            self._token_lm = KenLM(str(self.token_arpa), self.token_dict)
        return self._token_lm

    def decode(self, search, logprobs: np.ndarray, nbest: int = 1) -> list[Hypothesis]:
        """Up to `nbest` hypotheses (best first, distinct word strings) for log-probs [T, V]."""
        emissions = np.ascontiguousarray(logprobs, dtype=np.float32)
        T, V = emissions.shape
        if V != len(self.tokens):
            raise UserError(f"emissions have {V} columns but tokens.txt has {len(self.tokens)}")
        if T == 0:
            return [Hypothesis([], [])]
        results = search.decode(emissions.ctypes.data, T, V)
        out, seen = [], set()
        for r in results:
            hyp = self._hypothesis(r)
            if hyp.text in seen:
                continue
            seen.add(hyp.text)
            out.append(hyp)
            if len(out) >= nbest:
                break
        return out or [Hypothesis([], [])]

    def _hypothesis(self, r) -> Hypothesis:
        """Convert a flashlight DecodeResult (per-frame words/tokens, -1 = none)."""
        toks = ctc_collapse([t for t in r.tokens if t >= 0])
        if isinstance(r.words, list) and any(w >= 0 for w in r.words):
            words = [self.word_dict.get_entry(w) for w in r.words if w >= 0]
        else:
            words = pieces_to_text(self.tokens[t] for t in toks).split()
        return Hypothesis(words, toks, float(r.score), float(r.emittingModelScore), float(r.lmScore))
