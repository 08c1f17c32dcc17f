"""Report: precision and recall of the PII detectors per entity on the peer cases (not a test).

.venv/bin/python benchmarks/pii_peer_cases.py [--cases ../shared/peer_cases/pii] [--misses]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from enrollment_platform.pii.detectors import default_detector
from enrollment_platform.pii.evaluation import evaluate, load_cases, score_table, scores

REPO = Path(__file__).resolve().parents[1]


def default_cases() -> Path:
    shared = Path(os.environ.get("ENROLLMENT_SHARED_DIR") or REPO.parent / "shared")
    return shared / "peer_cases" / "pii"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=Path, default=default_cases())
    parser.add_argument("--misses", action="store_true", help="also list every missed and false span")
    args = parser.parse_args()
    outcomes = evaluate(load_cases(args.cases), default_detector())
    print(score_table(scores(outcomes)))
    if args.misses:
        for o in outcomes:
            for kind, spans in (
                ("missed", o.missed_strong),
                ("missed weak", o.missed_weak),
                ("false", o.false_positives),
            ):
                for start, end in sorted(spans):
                    print(f"{kind:<12} {o.case.entity:<13} {o.case.text[start:end]!r:<28} in {o.case.text!r}")


if __name__ == "__main__":
    main()
