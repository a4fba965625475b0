"""Ponder's look: both themes' text contrast measured from their colours, and the style reaching every widget."""
from __future__ import annotations

import pytest

from app import style
from app.style import DARK, LIGHT, MIN_CONTRAST, TEXT_ON, chosen_theme, contrast, contrasts, theme_fields


def test_contrast_is_the_wcag_ratio():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the lightest grey AA allows on white


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=lambda t: t.name)
def test_every_text_colour_reaches_4_5_to_1_on_what_it_is_drawn_on(theme):
    low = {pair: round(ratio, 2) for pair, ratio in contrasts(theme).items() if ratio < MIN_CONTRAST}
    assert low == {}


def test_the_pairs_cover_every_text_colour_of_the_theme():
    foregrounds = {fg for fg, _bg in TEXT_ON}
    assert {"text", "muted", "accent", "on_accent", "error_text", "keyword", "string", "comment", "number"} <= foregrounds
    assert {f for pair in TEXT_ON for f in pair} <= set(theme_fields())


def test_the_style_sheet_uses_only_the_themes_colours():
    import re

    for theme in (LIGHT, DARK):
        colours = set(re.findall(r"#[0-9a-fA-F]{6}\b", style.style_sheet(theme)))
        assert colours <= {getattr(theme, f) for f in theme_fields()}


def test_the_theme_follows_the_os_unless_ponder_theme_says():
    assert chosen_theme(True, {}) is DARK and chosen_theme(False, {}) is LIGHT
    assert chosen_theme(True, {"PONDER_THEME": "light"}) is LIGHT
    assert chosen_theme(False, {"PONDER_THEME": "Dark"}) is DARK


def test_applying_a_theme_sets_the_palette_and_the_sheet(qapp):
    before = (qapp.palette(), qapp.styleSheet(), qapp.style().name())
    try:
        style.apply(qapp, DARK)
        assert qapp.palette().window().color().name() == DARK.window
        assert DARK.accent in qapp.styleSheet() and style.current() is DARK
    finally:
        qapp.setPalette(before[0])
        qapp.setStyleSheet(before[1])
        qapp.setStyle(before[2])
        style._current = LIGHT
