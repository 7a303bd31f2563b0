"""``python -m hut.e2e_metrics REF SYS [--json] [--details]``: the five E2E NLG Challenge scores.

Prints them as the official ``measure_scores.py`` does (``BLEU: 0.7203`` ...; fractions, not x100).
REF is either an E2E CSV (``mr,ref``; consecutive rows with the same MR form one instance) or plain
text with the references of each instance on consecutive lines and blank lines between instances.
SYS holds one system output per line, in the same instance order.  See :mod:`hut.metrics.e2e` for
how each metric matches the official one.
"""
from __future__ import annotations

import argparse
import json
import sys

from hut.metrics.e2e import (
    METRIC_NAMES,
    E2EMetricsError,
    JavaNotFoundError,
    e2e_score_details,
    read_outputs,
    read_references,
)


class InputMismatchError(E2EMetricsError, ValueError):
    """REF and SYS do not hold the same number of instances."""


def load_pair(ref_file: str, sys_file: str) -> tuple[list[list[str]], list[str]]:
    """Read REF and SYS and check that they pair up one to one."""
    outputs = read_outputs(sys_file)
    refs = read_references(ref_file, n_outputs=len(outputs))
    if len(refs) != len(outputs):
        raise InputMismatchError(
            f"the reference file {ref_file} holds {len(refs)} instances but the system output "
            f"file {sys_file} holds {len(outputs)} lines: they must match one to one")
    return refs, outputs


def score_files(ref_file: str, sys_file: str, java: str | None = None) -> dict:
    refs, outputs = load_pair(ref_file, sys_file)
    return e2e_score_details(outputs, refs, java=java)


# the BLEU/NIST intermediates that --details adds (keys of hut.metrics.e2e.mteval_bleu_nist)
DETAIL_KEYS = ("BLEU_cumulative", "BLEU_individual", "NIST_cumulative", "NIST_individual",
               "brevity_penalty", "ref_length", "nist_length_penalty", "nist_ref_length",
               "hyp_length", "n_references")


def format_scores(scores: dict, details: bool = False) -> str:
    lines = ["SCORES:", "=============="]
    lines += [f"{m}: {scores[m]:.4f}" for m in METRIC_NAMES]
    if details:
        def row(key):
            return " ".join(f"{v:.4f}" for v in scores[key])

        lines += [
            "",
            f"BLEU cumulative n=1..4: {row('BLEU_cumulative')}",
            f"BLEU individual n=1..4: {row('BLEU_individual')}",
            f"NIST cumulative n=1..5: {row('NIST_cumulative')}",
            f"NIST individual n=1..5: {row('NIST_individual')}",
            f"BLEU brevity penalty: {scores['brevity_penalty']:.4f} ({scores['hyp_length']} output "
            f"words, reference length {scores['ref_length']})",
            f"NIST length penalty: {scores['nist_length_penalty']:.4f} ({scores['hyp_length']} output "
            f"words, reference length {scores['nist_ref_length']:.4f} from "
            f"{scores['n_references']} references)",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m hut.e2e_metrics",
        description="E2E NLG Challenge metrics (BLEU, NIST, METEOR, ROUGE_L, CIDEr) computed as "
                    "the official measure_scores.py.")
    ap.add_argument("ref", metavar="REF",
                    help="references: an E2E 'mr,ref' CSV, or blank-line-separated blocks")
    ap.add_argument("sys", metavar="SYS", help="system outputs, one per line")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object (BLEU, NIST, METEOR, ROUGE_L, CIDEr)")
    ap.add_argument("--details", action="store_true",
                    help="also give cumulative and individual BLEU (n=1..4) and NIST (n=1..5), "
                         "the brevity and length penalties and the reference lengths behind them")
    ap.add_argument("--java", default=None,
                    help="the java executable (default: $HUT_JAVA, else java on PATH)")
    args = ap.parse_args(argv)

    try:
        scores = score_files(args.ref, args.sys, java=args.java)
    except (InputMismatchError, FileNotFoundError, UnicodeDecodeError) as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    except (JavaNotFoundError, E2EMetricsError, ValueError) as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 1

    if args.json:
        obj = {m: scores[m] for m in METRIC_NAMES}
        if args.details:
            obj.update((k, scores[k]) for k in DETAIL_KEYS)
        print(json.dumps(obj))
    else:
        print(format_scores(scores, details=args.details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
