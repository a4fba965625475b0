"""Auto: pick a thinking budget per question, then stop thinking early once the answer has settled.

(a) Before generating: a difficulty score in [0, 1] from the question's form, the
model's own uncertainty, and (with documents) retrieval confidence:

    score = 0.45 * form + 0.45 * uncertainty + 0.10 * (1 - retrieval_confidence)
    (without documents the 0.10 goes to uncertainty)

  - form: 0.1 base; +0.3 when the question carries two or more numbers or an
    arithmetic operator; +0.25 for words that ask for reasoning (why, explain,
    prove, how many, calculate, compare, solve, ...); +0.15 over 25 words;
    +0.1 for more than one question mark; capped at 1.
  - uncertainty: entropy (nats) of the first answer token when the span is
    closed at once (one probe, rolled back), divided by UNCERTAIN_NATS, capped at 1.
    A model sure of its zero-thought answer has low entropy there (EAT,
    arXiv:2509.26522, uses the same signal in flight).

  The score maps onto TIERS; the result is capped by the ceiling (the context).

(b) While thinking: every PROBE_EVERY thinking tokens, close the span on a
rolled-back copy of the state and decode PROBE_TOKENS answer tokens greedily
(Dynasor-CoT, arXiv:2412.20993, probes every 64 tokens and stops when the last
k answers agree; k=3 is its "mid" setting). When the last AGREE probe answers
are identical, non-empty and free of hesitation words, thinking stops early.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.runtime.session import ModelSession

TIERS = ((0.20, 0), (0.35, 128), (0.50, 256), (0.65, 512), (0.80, 1024), (1.01, 2048))
UNCERTAIN_NATS = 4.0
PROBE_EVERY = 64
PROBE_TOKENS = 12
AGREE = 3
HESITATION = re.compile(r"\b(wait|hmm|but|maybe|perhaps|not sure|however)\b", re.IGNORECASE)
REASONING_WORDS = re.compile(
    r"\b(why|explain|prove|how many|how much|calculate|compute|compare|solve|derive|step|difference|"
    r"estimate|reason|what if|total|remain|left)\b", re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def form_score(question: str) -> float:
    """How hard the question looks from its wording alone."""
    score = 0.1
    if len(NUMBER.findall(question)) >= 2 or re.search(r"\d\s*[-+*/x×÷^]\s*\d", question):
        score += 0.3
    if REASONING_WORDS.search(question):
        score += 0.25
    if len(question.split()) > 25:
        score += 0.15
    if question.count("?") > 1:
        score += 0.1
    return min(score, 1.0)


@dataclass(frozen=True, slots=True)
class BudgetChoice:
    budget: int
    score: float
    reason: str  # the figures behind the choice
    why: str = ""  # the same in words, for the person


def describe(form: float, entropy: float) -> str:
    """What the question looked like to Auto, in words."""
    looks = "it reads like a multi-step problem" if form >= 0.4 else "it reads like a simple question"
    if entropy < UNCERTAIN_NATS * 0.25:
        sure = "the model was sure of a direct answer"
    elif entropy < UNCERTAIN_NATS * 0.6:
        sure = "the model was unsure of a direct answer"
    else:
        sure = "the model had no clear direct answer"
    return f"{looks} and {sure}"


def choose_budget(question: str, entropy: float, ceiling: int,
                  retrieval_confidence: float | None = None) -> BudgetChoice:
    """The budget Auto gives `question` (see the module docstring for the rule)."""
    form = form_score(question)
    uncertainty = min(entropy / UNCERTAIN_NATS, 1.0)
    if retrieval_confidence is None:
        score = 0.45 * form + 0.55 * uncertainty
    else:
        score = 0.45 * form + 0.45 * uncertainty + 0.10 * (1.0 - retrieval_confidence)
    budget = next(b for limit, b in TIERS if score < limit)
    budget = max(0, min(budget, ceiling))
    return BudgetChoice(budget, round(score, 3),
                        f"form {form:.2f}, first-token entropy {entropy:.2f} nats -> score {score:.2f}",
                        describe(form, entropy))


def normalise(answer: str) -> str:
    """Probe answers compare on their first line, lower case, without punctuation."""
    line = answer.strip().split("\n", 1)[0].lower()
    return re.sub(r"[^\w\s]", "", line).strip()


@dataclass
class EarlyExit:
    """Dynasor-style answer probes during thinking; `settled` once AGREE in a row agree."""

    close: str
    every: int = PROBE_EVERY
    decode: int = PROBE_TOKENS
    agree: int = AGREE
    answers: list[str] = field(default_factory=list)
    cost: int = 0

    def due(self, used: int) -> bool:
        return used > 0 and used >= self.every * (len(self.answers) + 1)

    def probe(self, session: ModelSession) -> str:
        result = session.probe(self.close, self.decode)
        self.cost += result.cost
        self.answers.append(result.text)
        return result.text

    @property
    def settled(self) -> bool:
        last = self.answers[-self.agree:]
        if len(last) < self.agree or any(HESITATION.search(a) for a in last):
            return False
        first = normalise(last[0])
        return bool(first) and all(normalise(a) == first for a in last)
