"""The CLI as a script uses it: real processes, real model, JSON out, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


GEMMA = ("--model", "gemma-3-270m")  # the small built-in model: the default (1.5B) only where it is the point


def ponder(*args: str, home) -> subprocess.CompletedProcess:
    env = dict(os.environ, PONDER_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "app.main", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_ask_json_has_every_field(gemma_model, ponder_home):
    out = ponder("ask", "What is the capital of France?", "--json", "--temperature", "0", "--seed", "1",
                 "--max-tokens", "12", "--speculate", *GEMMA, home=ponder_home)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"answer", "reasoning", "thinking_tokens", "answer_tokens", "budget", "sources", "model",
                         "backend", "timings", "drafted_tokens", "accepted_tokens"}
    assert 0 <= data["accepted_tokens"] <= data["drafted_tokens"]
    assert set(data["timings"]) == {"load_s", "ttft_s", "prefill_tok_s", "decode_tok_s"}
    assert data["answer"].startswith("Paris") and data["backend"] == "CPU"
    assert data["timings"]["decode_tok_s"] > 0 and data["timings"]["load_s"] > 0


def test_ask_json_reports_a_draft_models_tokens(gemma_model, ponder_home):
    """Forced, a model drafting for itself drafts and says so; not forced, the measured costs switch it off (a
    draft as dear as the model never pays) and stderr says why."""
    base = ("ask", "Count from one to ten in words.", "--json", "--temperature", "0", "--max-tokens", "16", *GEMMA,
            "--draft-model", "gemma-3-270m")
    forced = ponder(*base, "--force-draft", home=ponder_home)
    assert forced.returncode == 0, forced.stderr
    data = json.loads(forced.stdout)
    assert data["draft_model"] == "gemma-3-270m" and 0 < data["accepted_tokens"] <= data["drafted_tokens"]
    off = ponder(*base, home=ponder_home)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["draft_model"] == "" and "does not draft on this machine" in off.stderr


def test_ask_streams_plain_text(gemma_model, ponder_home):
    out = ponder("ask", "What is the capital of France?", "--temperature", "0", "--max-tokens", "12", *GEMMA,
                 home=ponder_home)
    assert out.returncode == 0 and out.stdout.strip().startswith("Paris")


@pytest.mark.parametrize("args, words", [
    (("ask", "hi", "--model", "/no/such/model.gguf"), "no model file"),
    (("ask", "   "), "question is empty"),
    (("ask", "hi", "--max-tokens", "0"), "greater than 0"),
    (("ask", "hi", "--temperature", "-1"), "temperature"),
    (("ask", "hi", "--format", "klingon"), "Unknown prompt format"),
    (("ask", "hi", "--model", "no-such-name"), "No model called"),
    (("models", "import", "/etc/hostname"), "not a GGUF model"),
    (("ask", "hi", "--conversation", "999999"), "no conversation"),
])
def test_bad_input_is_one_line_on_stderr(args, words, ponder_home, gemma_model):
    out = ponder(*args, *(GEMMA if "--model" not in args and args[0] == "ask" else ()), home=ponder_home)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert words.lower() in out.stderr.lower()
    assert out.returncode in (1, 2)


def test_models_lists_the_built_in_models_and_which_is_the_default(gemma_model, ponder_home):
    out = ponder("models", "--json", home=ponder_home)
    assert out.returncode == 0, out.stderr
    models = {m["name"]: m for m in json.loads(out.stdout)}
    assert [m["source"] for m in models.values()][:3] == ["default", "builtin", "builtin"]
    assert models["qwen2.5-coder-1.5b-instruct"]["source"] == "default"
    assert models["qwen2.5-coder-0.5b-instruct"]["source"] == "builtin"
    gemma = models["gemma-3-270m"]
    assert gemma["info"]["architecture"] == "gemma3" and gemma["info"]["quantization"] == "Q4_K_M"
    assert all(models[name]["description"] for name in ("gemma-3-270m", "qwen2.5-coder-1.5b-instruct"))
    listed = ponder("models", home=ponder_home).stdout
    assert "qwen2.5-coder-1.5b-instruct" in listed.split("\n")[0] and "default" in listed.split("\n")[0]


def test_selftest_passes_on_the_default_model(ponder_home):
    out = ponder("selftest", "--json", home=ponder_home)  # assembles the 1.1 GB default once for the session
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and report["backend"] == "CPU" and report["answer"]
    assert report["model"].lower().startswith("qwen2.5 coder 1.5b")


def test_no_command_is_a_terminal_chat(gemma_model, ponder_home):
    env = dict(os.environ, PONDER_HOME=str(ponder_home))
    out = subprocess.run([sys.executable, "-m", "app.main", "--temperature", "0", "--max-tokens", "8", *GEMMA], env=env,
                         input="What is the capital of France?\n", capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "> Paris." in out.stdout


def test_ask_with_a_budget_reports_its_thinking(gemma_model, ponder_home):
    out = ponder("ask", "A farmer has 3 pens with 4 sheep in each. How many sheep?", "--budget", "8", "--json",
                 "--seed", "1", "--max-tokens", "12", *GEMMA, home=ponder_home)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["budget"] == 8 and 0 < data["thinking_tokens"] <= 8 and data["reasoning"]
    assert data["thinking"]["format"] == "scaffold" and data["thinking"]["closed_by"] in ("model", "budget")


def test_budget_off_and_auto(gemma_model, ponder_home):
    off = json.loads(ponder("ask", "What is the capital of France?", "--budget", "off", "--json", "--temperature",
                            "0", "--max-tokens", "8", *GEMMA, home=ponder_home).stdout)
    assert off["thinking_tokens"] == 0 and off["reasoning"] == "" and off["answer"].startswith("Paris")
    auto = json.loads(ponder("ask", "What is 12 times 3?", "--budget", "auto", "--json", "--seed", "1",
                             "--max-tokens", "8", *GEMMA, home=ponder_home).stdout)
    assert auto["thinking"]["auto"] and "entropy" in auto["thinking"]["auto_reason"]
    assert auto["thinking_tokens"] <= auto["budget"]


@pytest.mark.parametrize("value", ["lots", "-5"])
def test_bad_budget(value, ponder_home):
    out = ponder("ask", "hi", "--budget", value, home=ponder_home)
    assert out.returncode == 2 and "--budget" in out.stderr and "Traceback" not in out.stderr


def test_index_search_and_collections_from_the_command_line(gemma_model, ponder_home, tmp_path):
    docs = tmp_path / "cli-docs"
    docs.mkdir()
    (docs / "birds.md").write_text("# Birds\n\nThe kestrel hovers before it dives on a vole.\n")
    (docs / "junk.bin").write_bytes(b"\x00" * 64)
    out = ponder("index", str(docs), "--collection", "cli", "--json", home=ponder_home)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["indexed"] == 1 and report["embedded"] >= 1 and len(report["skipped"]) == 1
    hits = json.loads(ponder("search", "kestrel", "--collection", "cli", "--json", home=ponder_home).stdout)
    assert hits[0]["path"].endswith("birds.md") and "kestrel" in hits[0]["snippet"]
    listed = json.loads(ponder("collections", "--json", home=ponder_home).stdout)
    assert any(c["name"] == "cli" and c["files"] == 1 for c in listed)
    answer = json.loads(ponder("ask", "What does the kestrel do?", "--collection", "cli", "--json",
                               "--temperature", "0", "--max-tokens", "12", *GEMMA, home=ponder_home).stdout)
    assert answer["sources"][0]["path"].endswith("birds.md") and "[1] birds.md" in answer["context"]
    missing = ponder("search", "x", "--collection", "nope", home=ponder_home)
    assert missing.returncode == 1 and "no collection called 'nope'" in missing.stderr


def test_gui_selftest_leaves_the_persons_settings_and_history_alone(gemma_model, tmp_path):
    import json as json_
    import os as os_
    import shutil as shutil_
    import subprocess as subprocess_
    import sys as sys_

    from engine.chat.history import History

    home = tmp_path / "home"
    (home / "data" / "models").mkdir(parents=True)
    (home / "config").mkdir()
    shutil_.copy(gemma_model, home / "data" / "models" / gemma_model.name)
    chosen = json_.dumps({"model": "gemma-3-270m", "max_tokens": 300})  # the person's own choice, kept as it is
    (home / "config" / "settings.json").write_text(chosen)
    env = dict(os_.environ, PONDER_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    done = subprocess_.run([sys_.executable, "-m", "app.main", "selftest", "--gui", "--json"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json_.loads(done.stdout)["ok"]
    assert (home / "config" / "settings.json").read_text() == chosen
    assert not (home / "config" / "window.json").exists()
    assert History(home / "data" / "history.sqlite3").conversations() == []


def test_no_command_opens_the_window_and_options_alone_mean_chat():
    from app.cli import _route

    assert _route([]) is None and _route(["-v"]) is None and _route(["-psn_0_12345"]) is None
    assert _route(["--ctx", "2048"]) == ["chat", "--ctx", "2048"]
    assert _route(["-v", "ask", "hi"]) == ["-v", "ask", "hi"]


def test_no_display_is_a_sentence_not_a_crash(monkeypatch, capsys):
    from app import gui

    monkeypatch.setattr(gui.sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert gui.run_app() == 2 and "ponder chat" in capsys.readouterr().err


def test_reading_the_prompt_is_one_line_on_a_terminal_rewritten_then_cleared(monkeypatch, capsys):
    import io

    from app.cli import _Printer
    from engine import Progress, Token

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    show = _Printer()
    show(Progress(0, 600, "Reading 5 passages", 8.0))
    show(Progress(256, 600, "Reading 5 passages", 4.6))
    show(Progress(600, 600, "Reading 5 passages", 0.0))
    show(Token("Paris"))
    assert err.getvalue() == ("\r\033[KReading 5 passages… 0% · about 8 s left"
                              "\r\033[KReading 5 passages… 42% · about 5 s left\r\033[K")
    assert capsys.readouterr().out == "Paris"
