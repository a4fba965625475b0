"""Auto: pick a thinking budget per question, then stop thinking early once the answer has settled.

(a) Before generating: a difficulty score in [0, 1] from the question's form and
the model's own uncertainty about a direct answer:

    score = FORM_WEIGHT * form + (1 - FORM_WEIGHT) * uncertainty

  - form: how much computation the wording carries. 0.1 base; +0.3 for two or
    more numbers, in digits or words (or an arithmetic operator); +0.2 for three or more; +0.2 for a
    story around them (over 15 words); +0.15 for words that ask for reasoning
    (why, explain, prove, calculate, total, left, ...); +0.1 for more than one
    question mark; capped at 1. Reasoning pays on math and symbolic questions
    and barely on knowledge questions ("To CoT or not to CoT", arXiv:2409.12183),
    so form carries most of the weight: a fact question, or a bare "What is 9
    plus 6?", stays below the first tier.
  - uncertainty: entropy (nats) of the first answer token when the span is
    skipped (one probe, rolled back), divided by UNCERTAIN_NATS, capped at 1.
    On chat models it is a weak signal alone (the first token is often a space
    or a digit whichever the answer), so it only tips questions near a tier.

  The score maps onto TIERS; the result is capped by the ceiling (the context).

(b) While thinking, on models trained to think: every PROBE_EVERY thinking tokens, close the span on a
rolled-back copy of the state and decode PROBE_TOKENS answer tokens greedily
(Dynasor-CoT, arXiv:2412.20993, probes every 64 tokens and stops when the last
k answers agree; k=3 is its "mid" setting). When the last AGREE probe answers
are identical, non-empty and free of hesitation words, thinking stops early.

The thresholds were set on the tuning half of bench/data and are judged on the
held-out half (docs/thinking.md has the figures).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.runtime.session import ModelSession

FORM_WEIGHT = 0.7
AUTO_CEILING = 2048  # Auto never buys more than this
TIERS = ((0.45, 0), (0.60, 512), (0.80, 1024), (1.01, AUTO_CEILING))
UNCERTAIN_NATS = 4.0
PROBE_EVERY = 64
PROBE_TOKENS = 12
AGREE = 3
HESITATION = re.compile(r"\b(wait|hmm|but|maybe|perhaps|not sure|however)\b", re.IGNORECASE)
REASONING_WORDS = re.compile(
    r"\b(why|explain|prove|how many|how much|calculate|compute|compare|solve|derive|step|difference|"
    r"estimate|reason|what if|total|remain|left)\b", re.IGNORECASE)
NUMBER = re.compile(r"\d+(?:[.,]\d+)?|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|"
                    r"half|halves|twice|double|triple|thirds?|quarters?|fifths?|sixths?|sevenths?|eighths?|"
                    r"ninths?|tenths?|twelfths?)\b", re.IGNORECASE)


def form_score(question: str) -> float:
    """How much computation the question's wording carries (see the module docstring)."""
    score = 0.1
    numbers = len(NUMBER.findall(question))
    if numbers >= 2 or re.search(r"\d\s*[-+*/x×÷^]\s*\d", question):
        score += 0.3
    if numbers >= 3:
        score += 0.2
    if len(question.split()) > 15:
        score += 0.2
    if REASONING_WORDS.search(question):
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


def describe(form: float, entropy: float, thinks: bool) -> str:
    """Why Auto chose as it did, in words: only the reasons on the side of its choice."""
    sure = entropy < UNCERTAIN_NATS * 0.25
    if thinks:
        if form >= 0.6:
            return "it reads like a multi-step problem"
        return "the model was unsure of a direct answer" if not sure else "it asks for a calculation"
    looks = "a short calculation" if form >= 0.4 else "a simple question"
    return f"{looks}{' the model was sure of' if sure else ''}"


def choose_budget(question: str, entropy: float, ceiling: int) -> BudgetChoice:
    """The budget Auto gives `question` (see the module docstring for the rule)."""
    form = form_score(question)
    uncertainty = min(entropy / UNCERTAIN_NATS, 1.0)
    score = FORM_WEIGHT * form + (1 - FORM_WEIGHT) * uncertainty
    budget = next(b for limit, b in TIERS if score < limit)
    budget = max(0, min(budget, ceiling))
    return BudgetChoice(budget, round(score, 3),
                        f"form {form:.2f}, first-token entropy {entropy:.2f} nats -> score {score:.2f}",
                        describe(form, entropy, budget > 0))


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
        """Whether a probe is due after `used` thinking tokens (never when `every` is 0)."""
        return self.every > 0 and used > 0 and used >= self.every * (len(self.answers) + 1)

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
