"""python -m asrsweep.decode_test --config C --emissions <emissions/k> --lexicon L --arpa A --tokens T --best <decode/k>/best_on_dev.json --outdir <decode/k> [--threads P]

Decode dev and test with the ONE setting frozen on dev (best_on_dev.json); nothing is chosen
here.  Writes test.json (test WER/CER, S/D/I, the setting, greedy test WER/CER for reference,
dev WER/CER as a reproduction check), hyps_dev.tsv and hyps_test.tsv
(utt_id ref hyp errors ref_words).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from asrsweep.common import UserError, cli_main, open_outdir, read_json, write_json_atomic
from asrsweep.decode_sweep import check_tokens, load_decode_config, load_emissions, run_settings, write_tsv
from asrsweep.decoder import Decoder, Setting, greedy, make_setting
from asrsweep.scoring import Score, score

HYP_COLUMNS = ["utt_id", "ref", "hyp", "errors", "ref_words"]


def frozen_setting(best_path: Path) -> Setting:
    """The setting recorded in best_on_dev.json."""
    best = read_json(best_path)
    if "setting" not in best:
        raise UserError(f"{best_path}: no 'setting'; written by asrsweep.merge_sweep?")
    return make_setting(best["setting"], f"{best_path}: setting")


def frozen_parser(doc: str, config_help: str, outdir_help: str) -> argparse.ArgumentParser:
    """Flags of a step that decodes dev and test with the setting of best_on_dev.json.

    Shared by decode_test and dump_nbest; `doc` is the step's module docstring.
    """
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--config", required=True, help=config_help)
    p.add_argument("--emissions", required=True, type=Path, help="dir with dev.pt and test.pt")
    p.add_argument("--lexicon", required=True, type=Path)
    p.add_argument("--arpa", required=True, type=Path)
    p.add_argument("--tokens", required=True, type=Path)
    p.add_argument("--best", required=True, type=Path, help="best_on_dev.json of merge_sweep")
    p.add_argument("--outdir", required=True, type=Path, help=outdir_help)
    p.add_argument("--threads", type=int, default=1, help="worker processes")
    return p


def hyp_rows(blob: dict, hyps: list[str], result: Score) -> list[dict]:
    """hyps_{split}.tsv rows."""
    return [{"utt_id": u, "ref": r, "hyp": h, "errors": e, "ref_words": n}
            for u, r, h, e, n in zip(blob["utt_ids"], blob["texts"], hyps, result.utt_errors, result.utt_words)]


def decode_split(decoder: Decoder, setting: Setting, blob: dict, threads: int) -> tuple[list[str], Score]:
    """Hypotheses and scores of one split with `setting`."""
    [(hyps, _)] = run_settings(decoder, [setting], blob["logprobs"], threads)
    return hyps, score(list(blob["texts"]), hyps)


def main(argv: list[str] | None = None) -> None:
    """Parse flags; decode dev and test with the frozen setting; write the results."""
    p = frozen_parser(__doc__, "stage config.json (section decode, checked)", "writes test.json, hyps_{dev,test}.tsv")
    args = p.parse_args(argv)
    load_decode_config(args.config)  # a broken stage config should fail here too
    setting = frozen_setting(args.best)
    open_outdir(args.outdir, None)
    decoder = Decoder(args.lexicon, args.arpa, args.tokens)
    out = {"setting": setting.as_dict(), "split": "test"}
    for split in ("dev", "test"):
        start = time.perf_counter()
        blob = load_emissions(args.emissions, split)
        check_tokens(blob, decoder.tokens, str(args.emissions))
        hyps, result = decode_split(decoder, setting, blob, max(1, args.threads))
        write_tsv(args.outdir / f"hyps_{split}.tsv", hyp_rows(blob, hyps, result), HYP_COLUMNS)
        greedy_hyps = [greedy(lp, decoder.tokens).text for lp in blob["logprobs"]]
        g = score(list(blob["texts"]), greedy_hyps)
        if split == "dev":
            out["dev"] = {"wer": result.wer, "cer": result.cer}
        else:
            out.update(result.row())
            out["greedy"] = {"wer": g.wer, "cer": g.cer}
        print(f"decode_test: {split}: WER {result.wer:.4f} CER {result.cer:.4f} (greedy WER {g.wer:.4f}) "
              f"{len(hyps)} utts in {time.perf_counter() - start:.1f}s", flush=True)
    write_json_atomic(args.outdir / "test.json", out)


if __name__ == "__main__":
    cli_main(main)
