"""Running a thinking span on a real model: the prompt that opens (or skips) it, and the token loop inside it."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from engine.budget.auto import AGREE, AUTO_CEILING, PROBE_EVERY, EarlyExit, choose_budget
from engine.budget.controller import Phase, ThinkingController
from engine.budget.formats import (SCAFFOLD_CHAT, SCAFFOLD_INSTRUCTION, SCAFFOLD_INSTRUCTION_BRIEF,
                                   SCAFFOLD_INSTRUCTION_CITED, ThinkingSupport)
from engine.events import ThinkingReport
from engine.runtime.loop import SamplingSettings, build_sampler
from engine.runtime.session import CancelFn, ModelSession

CLOSE_MARGIN = 32  # context kept free for the injected close and "Wait" extensions


@dataclass(frozen=True, slots=True)
class ThinkingRequest:
    """budget None: Auto. min_think: close the span no earlier than this (s1 "Wait", max_extensions times)."""

    budget: int | None = 0
    min_think: int = 0
    max_extensions: int = 2

    @property
    def auto(self) -> bool:
        return self.budget is None


@dataclass(frozen=True, slots=True)
class PromptParts:
    """How the prompt changes when thinking is on or off."""

    thinking: bool
    template_kwargs: dict = field(default_factory=dict)
    suffix: str = ""  # appended to the rendered prompt (opens or pre-closes the span)
    system_extra: str = ""  # appended to the system prompt (scaffolds that ask a chat model to think)


def prompt_parts(support: ThinkingSupport, request: ThinkingRequest, cites: bool = False) -> PromptParts:
    """`cites`: the answer comes from numbered sources and must keep their numbers."""
    fmt = support.format
    on = request.auto or (request.budget or 0) > 0
    if fmt.name == "scaffold":  # the completion prompt itself opens the Reasoning line
        return PromptParts(on)
    if fmt is SCAFFOLD_CHAT:
        # Off and every fixed budget share one prompt (and its KV cache); Auto asks for brief steps, which is
        # most of what it saves on questions that need thought. Cited answers keep the citing instruction.
        instruction = (SCAFFOLD_INSTRUCTION_CITED if cites else
                       SCAFFOLD_INSTRUCTION_BRIEF if request.auto else SCAFFOLD_INSTRUCTION)
        return PromptParts(on, suffix="" if on else fmt.skip, system_extra=instruction)
    opener = "" if support.opens_in_prompt else fmt.start
    if on:
        return PromptParts(True, support.template_kwargs_on, opener + "\n" if opener else "")
    if support.has_switch:  # the template's own off switch (Qwen3: enable_thinking=False)
        return PromptParts(False, support.template_kwargs_off)
    return PromptParts(False, suffix=opener + "\n\n" + fmt.end + "\n\n")  # an empty span


class ThinkingRun:
    """The span between the prompt and the answer, run as `generate(before_answer=...)`."""

    def __init__(self, session: ModelSession, support: ThinkingSupport, request: ThinkingRequest,
                 question: str, sampling: SamplingSettings, room: int,
                 on_thinking: Callable[[str], None] | None = None) -> None:
        self.session, self.support, self.request = session, support, request
        self.question, self.sampling, self.room = question, sampling, room
        self.on_thinking = on_thinking or (lambda _t: None)
        self.controller: ThinkingController | None = None
        self.auto_reason = ""
        self.auto_why = ""
        self.early: EarlyExit | None = None
        self.close_tokens = 0
        self.thinking_s = 0.0
        self.finished_at = 0.0
        self.first_sampled = 0.0  # perf_counter() of the first and the last thinking token
        self.last_sampled = 0.0

    def __call__(self, cancelled: CancelFn) -> None:
        start = time.perf_counter()
        fmt = self.support.format
        ceiling = max(0, self.room - CLOSE_MARGIN)
        if self.request.auto:
            zero_thought = self.session.probe(fmt.skip or fmt.close, 0)
            choice = choose_budget(self.question, zero_thought.entropy, min(ceiling, AUTO_CEILING))
            budget, self.auto_reason, self.auto_why = choice.budget, choice.reason, choice.why
            # Probing pays where reasoning runs on past its answer (models trained to think double-check).
            # A scaffolded model's steps reach the final number in their last tenth (bench/data tuning half:
            # 8 of 8 word problems, at 87-99% of the span), so probes would cost ~20% more tokens evaluated to
            # save at most 10%: Auto's saving there is skipping thought on questions that need none.
            self.early = EarlyExit(fmt.close, cost=zero_thought.cost, every=PROBE_EVERY if fmt.native else 0)
        else:
            budget = min(self.request.budget or 0, ceiling)
        self.controller = ThinkingController(fmt, budget, self.request.min_think, self.request.max_extensions)
        if budget > 0:
            self._think(cancelled)
        else:  # the prompt opened the span, and there is nothing to spend in it: close it at once
            self.close_tokens += self._inject(fmt.skip or fmt.close)
        self.finished_at = time.perf_counter()
        self.thinking_s = self.finished_at - start

    def _inject(self, text: str) -> int:
        """Evaluate `text` on top of the KV cache; returns the tokens that cost (nothing earlier is redone)."""
        before = self.session.evaluated
        self.session.evaluate(self.session.tokenize(text))
        return self.session.evaluated - before

    def _think(self, cancelled: CancelFn) -> None:
        c, session = self.controller, self.session
        sampler = build_sampler(session, self.sampling)
        try:
            while c.phase is Phase.THINKING and not cancelled():
                if self.early is not None and self.early.due(c.used):
                    self.early.probe(session)
                    if self.early.settled:
                        c.request_early_stop()
                close = c.before_sample()
                if c.phase is Phase.ANSWER:
                    if close:
                        self.close_tokens += self._inject(close)
                    break
                token = session.sample(sampler)
                self.last_sampled = time.perf_counter()
                self.first_sampled = self.first_sampled or self.last_sampled
                step = c.observe(session.piece(token), session.is_eog(token))
                if step.retract:
                    session.rewind(len(session.tokens) - step.retract)
                if step.inject:
                    injected = self._inject(step.inject)
                    if c.phase is Phase.ANSWER:
                        self.close_tokens += injected
                elif step.evaluate:
                    session.evaluate([token])
                if step.shown:
                    self.on_thinking(step.shown)
        finally:
            sampler.close()

    def explain(self) -> str:
        """What happened to the thinking, in a sentence or two a person reads under the answer."""
        c = self.controller
        if c is None:
            return "Stopped before thinking began."
        used, budget = c.used, c.budget
        if self.request.auto:
            if budget == 0:
                return f"Auto answered directly: {self.auto_why}."
            brief = " and asked for brief steps" if self.support.format is SCAFFOLD_CHAT else ""
            start = f"Auto allowed {budget:,} thinking tokens{brief}: {self.auto_why}. "
        elif budget == 0:
            return ""
        else:
            start = ""
        end = {
            "model": f"The model finished reasoning after {used:,} tokens.",
            "budget": f"The {budget:,}-token budget ran out; the model answered from its reasoning so far.",
            "early": (f"Stopped early at {used:,} tokens: the last {len(self.early.answers[-AGREE:])} checks of "
                      f"the answer agreed." if self.early else f"Stopped early at {used:,} tokens."),
            "repeat": f"Stopped at {used:,} tokens: the reasoning had started repeating itself.",
        }.get(c.closed_by, f"Stopped after {used:,} thinking tokens.")
        return start + end

    def report(self, answer_end: float) -> ThinkingReport:
        c = self.controller
        early = self.early
        return ThinkingReport(
            format=self.support.format.name, budget=c.budget if c else 0, used=c.used if c else 0,
            closed_by=(c.closed_by or "cancelled") if c else "off", auto=self.request.auto,
            auto_reason=self.auto_reason, extensions=c.extensions if c else 0,
            probes=len(early.answers) if early else 0, probe_tokens=early.cost if early else 0,
            close_tokens=self.close_tokens, thinking_s=round(self.thinking_s, 3),
            answer_s=round(max(0.0, answer_end - self.finished_at), 3), explanation=self.explain())
