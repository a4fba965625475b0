"""Ponder's look: both themes' text contrast measured from their colours, and the style reaching every widget."""
from __future__ import annotations

import pytest

from app import style
from app.style import (DARK, LIGHT, MIN_CONTRAST, PAGES, PALETTE_TEXT_ON, chosen_theme, contrast, contrasts, text_pairs,
                       theme_fields)


def test_contrast_is_the_wcag_ratio():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the lightest grey AA allows on white


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=lambda t: t.name)
def test_every_text_colour_reaches_4_5_to_1_on_what_it_is_drawn_on(theme):
    low = {pair: round(ratio, 2) for pair, ratio in contrasts(theme).items() if ratio < MIN_CONTRAST}
    assert low == {}


def test_the_pairs_are_read_from_the_style_itself():
    pairs = text_pairs()
    assert {"text", "muted", "accent", "on_accent", "error_text", "keyword", "string", "comment", "number"} <= \
        {fg for fg, _bg in pairs}
    assert {f for pair in pairs for f in pair} <= set(theme_fields())
    assert ("on_accent", "accent_fill") in pairs and ("error_text", "error_fill") in pairs  # a rule's own background
    assert ("muted", "card") in pairs and ("muted", "code") in pairs  # a parent's: the reasoning card, a code block
    assert {("error_text", page) for page in PAGES} <= pairs  # QLabel[role="error"] has none: every page
    assert ("text", "selection") in pairs and ("comment", "code") in pairs and ("error_text", "selection") in pairs


def test_a_colour_added_to_the_sheet_is_measured(monkeypatch):
    sheet = style.style_sheet
    monkeypatch.setattr(style, "style_sheet", lambda t: sheet(t) + f"QLabel#new {{ color: {t.comment}; }}")
    assert {("comment", page) for page in PAGES} <= text_pairs()


@pytest.mark.parametrize("theme", [LIGHT, DARK], ids=lambda t: t.name)
def test_the_palettes_text_roles_reach_4_5_to_1_measured_from_the_qt_palette(qapp, theme):
    from PySide6.QtGui import QPalette

    p = style.palette(theme)
    low = {}
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Disabled):
        for fg, bg in PALETTE_TEXT_ON:
            ratio = contrast(p.color(group, getattr(QPalette.ColorRole, fg)).name(),
                             p.color(group, getattr(QPalette.ColorRole, bg)).name())
            if ratio < MIN_CONTRAST:
                low[(group.name, fg, bg)] = round(ratio, 2)
    assert low == {}


def test_no_widget_sets_a_colour_of_its_own():
    """Every colour comes from app/style.py, where its contrast is measured (a dialog's own red once read 3.1:1 on
    the dark theme)."""
    import re
    from pathlib import Path

    literal = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b|\brgba?\(|palette\(|GlobalColor|QColor\(\s*[\"']"
                         r"|(?<![-\w])colou?r\s*:")
    app_dir = Path(style.__file__).parent
    found = [f"{path.relative_to(app_dir)}:{n}: {line.strip()}"
             for path in sorted(app_dir.rglob("*.py")) if path.name != "style.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if literal.search(line.split("  #")[0])]
    assert found == []


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
