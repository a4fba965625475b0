"""Every parser of untrusted input, fuzzed (a short profile; `ponder bench --only robustness` runs a long one):
each input ends in a result or the parser's own error, never a crash or a hang."""
from __future__ import annotations

import pytest

from bench.fuzz import entries, fuzz

EXAMPLES = 25


@pytest.mark.parametrize("name", sorted(entries()))
def test_no_input_crashes_or_hangs(name, ponder_home):
    result = fuzz(name, EXAMPLES)
    assert result.tried == EXAMPLES
    assert result.crashes == 0 and result.hangs == 0, "\n".join(result.examples)
