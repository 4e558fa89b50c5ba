"""Grid-edge warnings: a dev-selected setting on the edge of its swept range.

Library module (no CLI), used by `python -m asrsweep.results.summarize --runs R/E/runs --out
R/E/summary.tsv` and `asrsweep collect`. It reads the decoder sweep (R/E/decode/<k>/sweep.tsv)
and the rescoring grid (R/E/rescore/<k>/grid.tsv) with the setting chosen on dev
(best_on_dev.json's `setting`).

A knob is swept when the table holds two or more values of it. The chosen value is on an edge
when it is the smallest (`min`) or largest (`max`) swept value and strictly better on dev than
every setting with another value of that knob: the dev WER still falls towards the edge, so
the optimum may lie outside the range. A flat knob (ties everywhere, as on a toy model) is not
an edge: the tie-break picked the value, not the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from asrsweep.core import tsv

# A language-model weight at 0 switches that LM off: there is nothing below to try.
OFF_AT_ZERO = ("lm_weight", "ngram_weight")


@dataclass(frozen=True)
class Edge:
    """One knob on an edge: e.g. rescore.length_weight, side max, value 2.0, step 1.0."""

    knob: str
    side: str
    value: float
    step: float

    @property
    def label(self) -> str:
        """`rescore.length_weight=max` (the summary's `edge` column)."""
        return f"{self.knob}={self.side}"

    @property
    def hint(self) -> str:
        """What to extend, e.g. `rescore.length_weight: extend above 2 (try 3)`."""
        if self.side == "min" and self.value == 0 and self.knob.split(".")[-1] in OFF_AT_ZERO:
            return f"{self.knob}: 0 switches this LM off; dev prefers it off"
        beyond = self.value + self.step if self.side == "max" else self.value - self.step
        way = "above" if self.side == "max" else "below"
        return f"{self.knob}: extend {way} {self.value:g} (try {beyond:g})"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def find_edges(rows: list[dict], chosen: dict, prefix: str, swept: list[dict] | None = None) -> list[Edge]:
    """The knobs of `chosen` that sit on an edge of the swept values (dev rows of a table).

    rows: one dict per setting scored on dev (text values, as read, with its `wer`); chosen:
    knob -> value; prefix: the config section named in the warning (`decode`, `rescore`);
    swept: the rows that span the range (default: `rows`).
    """
    scored = [(row, _number(row.get("wer"))) for row in rows]
    scored = [(row, value) for row, value in scored if value is not None]
    edges = []
    for knob, value in chosen.items():
        value = _number(value)
        values = sorted({v for v in (_number(row.get(knob)) for row in (swept or rows))
                         if v is not None and not math.isinf(v)})
        if value is None or len(values) < 2 or value not in (values[0], values[-1]):
            continue
        here = min(w for row, w in scored if _number(row.get(knob)) == value)
        elsewhere = [w for row, w in scored if _number(row.get(knob)) != value]
        if elsewhere and here < min(elsewhere):
            side = "min" if value == values[0] else "max"
            # The gap at that end, or the mean gap where it is smaller (a random sweep's draws).
            gap = values[1] - values[0] if side == "min" else values[-1] - values[-2]
            step = max(gap, (values[-1] - values[0]) / (len(values) - 1))
            edges.append(Edge(f"{prefix}.{knob}", side, value, step))
    return edges


def table_edges(path: Path | None, best: dict | None, prefix: str) -> list[Edge]:
    """Edges of a sweep.tsv or grid.tsv (its dev rows; the decoder's greedy row left out).

    When the table records a dev share (a search that scored some settings on part of dev),
    only the settings scored on all of dev are compared.
    """
    if path is None or not Path(path).exists() or not best or not best.get("setting"):
        return []
    rows = [row for row in tsv.read_tsv(path) if row.get("split", "dev") == "dev"
            and row.get("setting") != "greedy" and row.get("decoder") != "greedy"]
    shares = [_number(row["dev_share"]) for row in rows if "dev_share" in row]
    full = rows
    if shares and None not in shares:
        full = [row for row in rows if _number(row["dev_share"]) == max(shares)]
    return find_edges(full, best["setting"], prefix, swept=rows)
