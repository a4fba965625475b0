"""History in SQLite: conversations round-trip, and an answer cut off by a crash is kept as partial."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine import History, HistoryError


def test_conversation_round_trip(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    cid = h.create_conversation("Trip", {"budget": 512})
    h.add_message(cid, "user", "Where to?")
    mid = h.add_message(cid, "assistant", "Lisb", state="streaming")
    h.update_message(mid, content="Lisbon.", state="complete", meta={"usage": {"answer_tokens": 3}})
    h.rename(cid, "Lisbon trip")
    h.close()
    h = History(tmp_path / "h.sqlite3")
    (c,) = h.conversations()
    assert (c.title, c.settings) == ("Lisbon trip", {"budget": 512})
    assert [(m.role, m.content, m.state) for m in h.messages(cid)] == [
        ("user", "Where to?", "complete"), ("assistant", "Lisbon.", "complete")]
    assert h.messages(cid)[1].meta == {"usage": {"answer_tokens": 3}}
    h.delete(cid)
    assert h.conversations() == [] and h.messages(cid) == []


def test_streaming_message_left_by_a_crash_becomes_partial(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    cid = h.create_conversation()
    h.add_message(cid, "assistant", "half an ans", state="streaming")
    h.close()
    h = History(tmp_path / "h.sqlite3")
    assert h.recovered == 1
    assert h.messages(cid)[0].state == "partial" and h.messages(cid)[0].content == "half an ans"


def test_unreadable_history_file_is_set_aside_and_said(tmp_path):
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    h = History(path)  # starts, with the damaged file kept beside it (tests/robustness/test_damaged_databases.py)
    assert h.repair is not None and h.repair.damaged.read_bytes().startswith(b"this is not")
    assert h.conversations() == []
    h.close()


def test_a_history_file_that_cannot_be_opened_is_a_clear_error(tmp_path):
    (tmp_path / "h.sqlite3").mkdir()  # a folder where the file should be
    with pytest.raises(HistoryError, match="cannot be opened"):
        History(tmp_path / "h.sqlite3")


def test_answer_survives_the_process_being_killed(gemma_model, ponder_home):
    env = dict(os.environ, PONDER_HOME=str(ponder_home), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.main", "ask", "Tell me a long story about a dragon and a knight.",
         "--format", "chatml", "--temperature", "0.8", "--seed", "1", "--max-tokens", "3000", "--ctx", "4096",
         "--model", "gemma-3-270m", "--budget", "off"],  # Off: a base model in chatml rambles on for the kill
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    printed = b""
    deadline = time.monotonic() + 120
    first = None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        chunk = proc.stdout.read() or b""
        printed += chunk
        if printed.strip() and first is None:
            first = time.monotonic()
        if first is not None and time.monotonic() - first > 1.5:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the answer ended before the kill: {proc.stderr.read().decode()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    h = History(ponder_home / "data" / "history.sqlite3")
    assert h.recovered >= 1
    last = h.messages(h.conversations()[0].id)[-1]
    assert last.role == "assistant" and last.state == "partial"
    assert len(last.content) > 10
    assert printed.decode("utf-8", "replace").startswith(last.content[:10])


def test_the_last_turn_is_dropped_and_can_be_put_back(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    cid, other = h.create_conversation("Trip"), h.create_conversation("Other")
    assert h.drop_last_turn(cid) == []
    h.add_message(cid, "user", "Where to?")
    h.add_message(cid, "assistant", "Porto.")
    h.add_message(cid, "user", "And then?")
    h.add_message(cid, "assistant", "Lisbon.", reasoning="south", meta={"thinking": {"budget": 128}})
    h.add_message(other, "user", "Elsewhere")  # a later id in another conversation is left alone
    before = h.messages(cid)
    dropped = h.drop_last_turn(cid)
    assert [m.content for m in dropped] == ["And then?", "Lisbon."]
    assert [m.content for m in h.messages(cid)] == ["Where to?", "Porto."]
    h.add_message(cid, "user", "And then?")  # the retry that is then stopped
    h.add_message(cid, "assistant", "Fa", state="cancelled")
    h.restore_messages(cid, dropped)
    assert h.messages(cid) == before
    assert [m.content for m in h.messages(other)] == ["Elsewhere"]
