"""Tune the hybrid fusion on the tuning set, then score the choice on the held-out eval set.

    python -m bench.tune_fusion

The tuning library holds the Libtasn1 manual plus the eval corpus as distractors; the held-out library is the
eval corpus alone, as `ponder bench` scores it.
"""
from __future__ import annotations

import itertools
import sys

from bench import retrieval_eval
from bench.documents import _fresh_library, eval_library
from engine.rag import search

GRID_K = (5, 20, 60)
GRID_DENSE = (0.25, 0.5, 0.75, 1.0)


def _score(library, collection, questions) -> dict[tuple, tuple[float, float]]:
    out = {}
    for k, w in itertools.product(GRID_K, GRID_DENSE):
        search.RRF_K, search.DENSE_WEIGHT = k, w
        out[(k, w)] = retrieval_eval.recall(library, collection, "hybrid", questions)
    return out


def main() -> int:
    if not retrieval_eval.TUNING_PDF.exists():
        print(f"tune_fusion: {retrieval_eval.TUNING_PDF} is missing (apt-get install libtasn1-doc)", file=sys.stderr)
        return 2
    saved = search.RRF_K, search.DENSE_WEIGHT
    tuning = _fresh_library()
    tuning.index("tuning", [str(retrieval_eval.TUNING_PDF), *map(str, retrieval_eval.corpus_paths())])
    tuned = _score(tuning, "tuning", retrieval_eval.TUNING_QUESTIONS)
    held_out = _score(eval_library()[0], "eval", retrieval_eval.QUESTIONS)
    print(f"{'k':>3} {'dense w':>7}   tuning @1   @5    held-out @1   @5")
    for key in tuned:
        print(f"{key[0]:>3} {key[1]:>7}   {tuned[key][0]:9.3f} {tuned[key][1]:5.3f}   {held_out[key][0]:11.3f} "
              f"{held_out[key][1]:5.3f}")
    best = max(tuned, key=lambda key: (tuned[key], -abs(key[1] - 1.0)))
    print(f"chosen on the tuning set: k={best[0]}, dense weight={best[1]} -> held-out {held_out[best]} "
          f"(the current {saved}: held-out {held_out.get(saved)})")
    search.RRF_K, search.DENSE_WEIGHT = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
