"""kill -9 at random moments during real work: every record Ponder acknowledged is there afterwards, consistent
(a few trials each; `ponder bench --only robustness` runs many)."""
from __future__ import annotations

import pytest

from bench.crash import SCENARIOS, trials

TRIALS = {"answer": 1, "indexing": 2, "download": 2, "model_import": 2, "settings_save": 2, "collections": 2}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kill_9_loses_no_acknowledged_record(scenario, gemma_model):
    result = trials(scenario, TRIALS[scenario], seed=15, max_kill_s=8.0 if scenario == "answer" else 1.5)
    assert result.trials == TRIALS[scenario]
    assert result.lost == 0, result.problems
