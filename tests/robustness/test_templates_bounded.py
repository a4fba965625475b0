"""Chat templates come from model files, so from anyone: a template that loops, recurses or builds a huge value
ends in ModelError, bounded in time and memory."""
from __future__ import annotations

import pytest

from engine import ModelError
from engine.chat import templates
from engine.chat.templates import Message, render_template

HOSTILE = {
    "power": "{{ 10 ** 1000000 }}",
    "power_chain": "{% set ns = namespace(n=10) %}{% for i in range(40) %}{% set ns.n = ns.n ** 2 %}{% endfor %}",
    "repeat": "{{ 'a' * 1000000000 }}",
    "nested_loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "doubling": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
                "{{ ns.s|length }}",
    "recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "output": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
    "center": "{{ 'a'|center(1000000000) }}",
    "format_width": "{{ '{:>1000000000}'.format('a') }}",
    "percent_width": "{{ '%1000000000s' % 'a' }}",
    "replace": "{% set ns = namespace(s='a' * 90000) %}{{ ns.s|replace('a', 'a' * 90000) }}",
    "method_replace": "{{ ('a' * 90000).replace('a', 'a' * 90000) }}",
    "escape": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "type_error": "{{ 1 + 'a' }}",
    "huge_source": "x" * (templates.MAX_TEMPLATE_CHARS + 1),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_template_is_a_model_error(name, monkeypatch):
    monkeypatch.setattr(templates, "MAX_RENDER_S", 1.0)
    with pytest.raises(ModelError, match="chat template"):
        render_template(HOSTILE[name], [Message("user", "hi")])


def test_real_templates_still_render():
    text = render_template(templates.NAMED_TEMPLATES["chatml"], [Message("user", "hi " * 5000)])
    assert text.count("hi") == 5000
    ok = ("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}"
          "{{ ns.n }}{{ '-' * 3 }}{{ messages|length }}{{ range(3)|list|length }}")
    assert render_template(ok, [Message("user", "a"), Message("assistant", "b")]) == "2---23"
