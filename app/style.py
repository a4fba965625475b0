"""Ponder's look, in one place: two themes (light and dark), the Qt palette and style sheet made from them, the
code-block colours, and the contrast of every text colour on the surfaces it is drawn on.

Widgets never set colours of their own: they name what they are (`setObjectName`, or a `role` property such as
`muted`) and the style sheet here says how that looks.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

MAX_LINE_PX = 760  # the conversation's column: about 90 characters a line, readable on a 1920-wide screen
MIN_CONTRAST = 4.5  # WCAG AA for body text


@dataclass(frozen=True, slots=True)
class Theme:
    name: str
    window: str  # the conversation's background
    sidebar: str  # sidebar and documents panel
    base: str  # text fields, lists, code blocks' frame
    text: str
    muted: str  # secondary text: figures, hints, timestamps
    accent: str  # links, focus ring, the selected conversation's bar
    on_accent: str  # text on an accent-filled button
    accent_fill: str  # primary buttons
    question: str  # the question's bubble
    card: str  # the reasoning card, source chips
    border: str
    selection: str  # selected list rows, selected text
    code: str  # code blocks' background
    error_fill: str
    error_text: str
    keyword: str  # code highlighting
    string: str
    comment: str
    number: str


LIGHT = Theme(name="light", window="#fbfbfc", sidebar="#f0f1f4", base="#ffffff", text="#1b1e24", muted="#5a6170",
              accent="#2b59c3", on_accent="#ffffff", accent_fill="#2b59c3", question="#e9effc", card="#f3f4f7",
              border="#d6dae1", selection="#d3def9", code="#f4f5f7", error_fill="#fdecea", error_text="#8a1f14",
              keyword="#8a2fb8", string="#1d6b35", comment="#646b78", number="#a4450c")
DARK = Theme(name="dark", window="#1a1c20", sidebar="#141619", base="#22252a", text="#e4e6ea", muted="#a0a7b3",
             accent="#86a8ff", on_accent="#ffffff", accent_fill="#3a62d0", question="#263250", card="#212429",
             border="#363a42", selection="#2f3d63", code="#121417", error_fill="#3d1f1c", error_text="#ffb4a8",
             keyword="#d59cf5", string="#8fd19e", comment="#9aa1ad", number="#f0ad7a")

# Surfaces a text colour can land on when the style gives it no background of its own (a muted label, a flat
# button, an error line): such a colour must read on every one of them.
PAGES = ("window", "sidebar", "base", "question", "card", "code")
CODE_KINDS = ("keyword", "string", "comment", "number")  # the code highlighter's colours, drawn on `code`
# Foregrounds set on list and table items: drawn on `base`, and on `selection` when their row is selected.
ITEM_TEXT = ("error_text",)
# Style-sheet parts that draw no text (scroll bars, slider, splitter, drop-down arrow).
_TEXTLESS = ("::handle", "::groove", "::sub-page", "::add-page", "::add-line", "::sub-line", "::drop-down")

# The Qt palette, role by role (role -> theme field), for what the style sheet does not reach: Markdown links,
# placeholders, dialogs. The disabled group greys text to `muted`.
PALETTE = (("Window", "window"), ("WindowText", "text"), ("Base", "base"), ("AlternateBase", "card"),
           ("Text", "text"), ("Button", "base"), ("ButtonText", "text"), ("Highlight", "selection"),
           ("HighlightedText", "text"), ("Link", "accent"), ("LinkVisited", "accent"), ("PlaceholderText", "muted"),
           ("ToolTipBase", "base"), ("ToolTipText", "text"), ("Mid", "border"), ("Dark", "muted"),
           ("BrightText", "window"))
DISABLED_TEXT = ("ButtonText", "Text", "WindowText")
# Each palette text role on the background role Qt draws it on (BrightText "contrasts well with Dark": Qt's docs).
PALETTE_TEXT_ON = (("WindowText", "Window"), ("Text", "Base"), ("Text", "AlternateBase"), ("ButtonText", "Button"),
                   ("HighlightedText", "Highlight"), ("ToolTipText", "ToolTipBase"), ("PlaceholderText", "Base"),
                   ("Link", "Base"), ("Link", "Window"), ("LinkVisited", "Base"), ("BrightText", "Dark"))


def luminance(colour: str) -> float:
    """WCAG relative luminance of '#rrggbb'."""
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_pairs() -> set[tuple[str, str]]:
    """Every (text colour, background) pair the style draws, as theme field names, read from the style itself: the
    style sheet's rules, the palette's text roles, the source chips, the code highlighter and item foregrounds."""
    names = Theme(**{f: f"@{f}" for f in theme_fields()}, name="names")
    rules = [([sel.strip() for sel in selectors.split(",")], dict(re.findall(r"([\w-]+)\s*:\s*@(\w+)", body)))
             for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", style_sheet(names))]
    backgrounds = {sel: decls["background"] for sels, decls in rules for sel in sels if "background" in decls}
    pairs: set[tuple[str, str]] = set()
    for selectors, decls in rules:
        for sel in selectors:
            if any(part in sel for part in _TEXTLESS):
                continue
            background = decls.get("background") or backgrounds.get(sel.rpartition(" ")[0])
            if "color" in decls:
                pairs |= {(decls["color"], bg) for bg in ([background] if background else PAGES)}
            elif "background" in decls:
                pairs.add(("text", decls["background"]))  # the text it inherits (QWidget's colour)
            if "selection-color" in decls:
                pairs.add((decls["selection-color"], decls["selection-background-color"]))
    fields_of = dict(PALETTE)
    pairs |= {(fields_of[fg], fields_of[bg]) for fg, bg in PALETTE_TEXT_ON}
    pairs |= {("muted", fields_of[bg]) for fg, bg in PALETTE_TEXT_ON if fg in DISABLED_TEXT}
    chip = chip_html("x", "x", names)
    pairs.add((re.search(r"[^-]color:@(\w+)", chip)[1], re.search(r"background-color:@(\w+)", chip)[1]))
    pairs |= {(field, bg) for field in (re.findall(r"color:\s*@(\w+)", muted_html("x", names))) for bg in PAGES}
    pairs |= {(kind, "code") for kind in CODE_KINDS}
    pairs |= {(field, bg) for field in ITEM_TEXT for bg in ("base", "selection")}
    return pairs


def contrasts(theme: Theme) -> dict[tuple[str, str], float]:
    """The contrast of every text colour the style draws on each surface it is drawn on."""
    return {(fg, bg): contrast(getattr(theme, fg), getattr(theme, bg)) for fg, bg in sorted(text_pairs())}


def chosen_theme(system_is_dark: bool, env: dict | None = None) -> Theme:
    """The OS's light or dark, unless PONDER_THEME=light|dark says otherwise."""
    wanted = (env if env is not None else os.environ).get("PONDER_THEME", "").lower()
    if wanted in ("light", "dark"):
        return DARK if wanted == "dark" else LIGHT
    return DARK if system_is_dark else LIGHT


def style_sheet(t: Theme, arrows: Path | None = None) -> str:
    """The application's style sheet; `arrows`: the folder with the spin boxes' arrows (`write_arrows`)."""
    return f"""
QMainWindow, QDialog {{ background: {t.window}; }}
QWidget {{ color: {t.text}; }}
QToolTip {{ color: {t.text}; background: {t.base}; border: 1px solid {t.border}; padding: 4px; }}
QScrollArea#chat, QScrollArea#chat > QWidget > QWidget {{ background: {t.window}; }}
#sidebar, DocumentsPanel {{ background: {t.sidebar}; }}
QDockWidget::title {{ background: {t.sidebar}; padding: 6px 8px; font-weight: 600; }}
QSplitter::handle {{ background: {t.border}; }}
QSplitter::handle:horizontal {{ width: 1px; }}
QLabel#brand {{ font-size: 16px; font-weight: 700; padding: 2px 2px 6px 2px; }}
QLabel[role="heading"] {{ color: {t.muted}; font-size: 11px; font-weight: 600; text-transform: uppercase;
    letter-spacing: 1px; padding: 6px 2px 2px 2px; }}
QLabel[role="muted"], QLabel#status {{ color: {t.muted}; }}
QLabel[role="hint"] {{ color: {t.muted}; font-style: italic; }}
QLabel[role="tick"] {{ color: {t.muted}; font-size: 10px; }}
QLabel[role="error"], QLabel#status[failed="true"] {{ color: {t.error_text}; }}
QLabel#errorBar {{ background: {t.error_fill}; color: {t.error_text}; padding: 8px; border-radius: 6px; }}

QPushButton, QToolButton {{ border: 1px solid {t.border}; border-radius: 6px; padding: 5px 12px;
    background: {t.base}; color: {t.text}; }}
QPushButton:hover, QToolButton:hover {{ border-color: {t.accent}; }}
QPushButton:pressed {{ background: {t.selection}; }}
QPushButton:disabled, QToolButton:disabled {{ color: {t.muted}; background: transparent; }}
QPushButton:flat {{ border: 1px solid transparent; background: transparent; color: {t.accent}; padding: 3px 8px; }}
QPushButton:flat:hover {{ background: {t.card}; }}
QPushButton:flat:disabled {{ color: {t.muted}; }}
QPushButton[primary="true"], QPushButton:default {{ background: {t.accent_fill}; color: {t.on_accent};
    border: 1px solid {t.accent_fill}; font-weight: 600; }}
QPushButton[primary="true"]:disabled, QPushButton:default:disabled {{ background: {t.card}; color: {t.muted};
    border-color: {t.border}; }}
QPushButton[role="example"] {{ text-align: left; padding: 10px 14px; border-radius: 10px; background: {t.base}; }}
QPushButton[role="example"]:hover {{ background: {t.question}; }}
QToolButton[role="disclosure"] {{ border: none; background: transparent; color: {t.muted}; padding: 2px 4px; }}

QLineEdit, QPlainTextEdit, QComboBox, QSpinBox, QDoubleSpinBox {{ background: {t.base}; color: {t.text};
    border: 1px solid {t.border}; border-radius: 6px; padding: 4px 6px;
    selection-background-color: {t.selection}; selection-color: {t.text}; }}
QPlainTextEdit#question {{ border-radius: 10px; padding: 6px 8px; font-size: 14px; }}
QComboBox::drop-down {{ border: none; width: 20px; }}
QComboBox QAbstractItemView {{ background: {t.base}; selection-background-color: {t.selection};
    selection-color: {t.text}; }}
QListWidget, QTableWidget, QTreeView {{ background: {t.base}; border: 1px solid {t.border}; border-radius: 6px;
    selection-background-color: {t.selection}; selection-color: {t.text}; outline: 0; }}
#sidebar QListWidget {{ background: transparent; border: none; }}
QListWidget::item {{ padding: 6px 8px; border-radius: 6px; color: {t.text}; }}
QListWidget::item:hover {{ background: {t.card}; }}
QListWidget::item:selected {{ background: {t.selection}; color: {t.text}; border-left: 3px solid {t.accent}; }}
QProgressBar {{ border: 1px solid {t.border}; border-radius: 5px; background: {t.base}; color: {t.text};
    text-align: center; min-height: 14px; }}
QProgressBar::chunk {{ background: {t.selection}; border-right: 1px solid {t.accent}; border-radius: 4px; }}
QSlider::groove:horizontal {{ height: 4px; background: {t.border}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {t.accent}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {t.base}; border: 2px solid {t.accent}; width: 14px; height: 14px;
    margin: -7px 0; border-radius: 9px; }}
QScrollBar:vertical {{ background: transparent; width: 10px; margin: 2px; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 2px; }}
QScrollBar::handle {{ background: {t.border}; border-radius: 3px; min-height: 24px; min-width: 24px; }}
QScrollBar::handle:hover {{ background: {t.muted}; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: transparent; }}
QMenuBar {{ background: {t.window}; }}
QMenuBar::item:selected, QMenu::item:selected {{ background: {t.selection}; color: {t.text}; }}
QMenu {{ background: {t.base}; border: 1px solid {t.border}; }}
QStatusBar {{ background: {t.sidebar}; color: {t.muted}; }}
QStatusBar QLabel {{ color: {t.muted}; padding: 0 6px; }}

QFrame#questionBubble {{ background: {t.question}; border-radius: 14px; }}
QFrame#answer[compared="true"] {{ border: 1px solid {t.border}; border-radius: 10px; }}
QLabel#speaker {{ color: {t.muted}; font-size: 11px; font-weight: 600; }}
QFrame#reasoning {{ background: {t.card}; border: 1px solid {t.border}; border-radius: 10px; }}
QFrame#reasoning QLabel, QFrame#reasoning QToolButton {{ color: {t.muted}; }}
QFrame#reasoning QPlainTextEdit {{ background: transparent; color: {t.muted}; border: none; }}
QFrame#codeBlock {{ background: {t.code}; border: 1px solid {t.border}; border-radius: 8px; }}
QFrame#codeBlock QPlainTextEdit {{ background: {t.code}; color: {t.text}; border: none; }}
QFrame#codeBlock QLabel {{ color: {t.muted}; font-size: 11px; }}
QLabel#sources {{ padding-top: 2px; }}
QLabel#sourceDetail {{ background: {t.card}; border: 1px solid {t.border}; border-radius: 8px; padding: 8px; }}
QWidget#welcome QLabel#welcomeTitle {{ font-size: 22px; font-weight: 700; }}

QPushButton:focus, QToolButton:focus, QComboBox:focus, QLineEdit:focus, QPlainTextEdit:focus, QListWidget:focus,
QTableWidget:focus, QSpinBox:focus, QDoubleSpinBox:focus {{ border: 2px solid {t.accent}; }}
QPushButton:flat:focus, QToolButton[role="disclosure"]:focus {{ border: 2px solid {t.accent}; }}
QSlider:focus {{ border: 2px solid {t.accent}; border-radius: 6px; }}
QLabel:focus {{ border: 2px solid {t.accent}; border-radius: 6px; }}
""" + _spin_boxes(t, arrows)


_ARROWS = {"up": "1,6 5,2 9,6", "down": "1,2 5,6 9,2"}  # chevrons in a 10x8 box


def write_arrows(t: Theme) -> Path:
    """The spin boxes' up and down arrows in the theme's muted colour, as SVG files in a folder of their own
    (removed at exit): a style sheet that sets a spin box's frame must draw its arrows too, and only from files."""
    folder = Path(tempfile.mkdtemp(prefix="ponder-style-"))
    atexit.register(shutil.rmtree, folder, True)
    for name, points in _ARROWS.items():
        (folder / f"{name}.svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="8" viewBox="0 0 10 8"><polyline '
            f'points="{points}" fill="none" stroke="{t.muted}" stroke-width="1.6" stroke-linecap="round" '
            f'stroke-linejoin="round"/></svg>')
    return folder


def _spin_boxes(t: Theme, arrows: Path | None) -> str:
    if arrows is None:
        return ""
    up, down = (arrows / "up.svg").as_posix(), (arrows / "down.svg").as_posix()
    return "".join(f"""
{box} {{ padding-left: 6px; padding-right: 20px; }}
{box}::up-button, {box}::down-button {{ subcontrol-origin: border; width: 20px; border: none; background: transparent; }}
{box}::up-button {{ subcontrol-position: top right; }}
{box}::down-button {{ subcontrol-position: bottom right; }}
{box}::up-button:hover, {box}::down-button:hover {{ background: {t.card}; }}
{box}::up-arrow {{ image: url({up}); width: 10px; height: 8px; }}
{box}::down-arrow {{ image: url({down}); width: 10px; height: 8px; }}""" for box in ("QSpinBox", "QDoubleSpinBox"))


def chip_html(label: str, href: str, t: Theme) -> str:
    """A compact source chip inside rich text (QLabel's HTML knows no border-radius; padding is spaces)."""
    return (f"<a href=\"{href}\" style=\"text-decoration:none; color:{t.accent}; background-color:{t.card};\">"
            f"&nbsp;{label}&nbsp;</a>")


def muted_html(text: str, t: Theme) -> str:
    """Secondary text inside rich text (a source's snippet)."""
    return f"<span style=\"color:{t.muted};\">{text}</span>"


def item_foreground(field: str):
    """The QColor of one of ITEM_TEXT, for a list or table item in the current theme."""
    from PySide6.QtGui import QColor

    assert field in ITEM_TEXT, f"{field} is not measured on list rows: add it to ITEM_TEXT"
    return QColor(getattr(_current, field))


def palette(t: Theme):
    """The Qt palette the theme implies (for what the style sheet does not reach: Markdown links, dialogs)."""
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    for role, field in PALETTE:
        p.setColor(getattr(QPalette.ColorRole, role), QColor(getattr(t, field)))
    for role in DISABLED_TEXT:
        p.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, role), QColor(t.muted))
    return p


_current = LIGHT


def current() -> Theme:
    """The theme applied last (code highlighting and source chips read their colours from it)."""
    return _current


def apply(app, theme: Theme | None = None) -> Theme:
    """Style the whole application: Fusion (the same on every OS), the theme's palette and style sheet."""
    global _current
    if theme is None:
        from PySide6.QtCore import Qt

        scheme = app.styleHints().colorScheme()
        system_dark = (scheme == Qt.ColorScheme.Dark if scheme != Qt.ColorScheme.Unknown
                       else app.palette().window().color().lightness() < 128)
        theme = chosen_theme(system_dark)
    _current = theme
    app.setStyle("Fusion")
    app.setPalette(palette(theme))
    app.setStyleSheet(style_sheet(theme, write_arrows(theme)))
    return theme


def theme_fields() -> list[str]:
    return [f.name for f in fields(Theme) if f.name != "name"]
