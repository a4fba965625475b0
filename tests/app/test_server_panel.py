"""The Server window, offscreen: the switch starts `ponder serve` through the bridge, the panel shows its address
and what it served, and the switch stops it."""
from __future__ import annotations

import json
import urllib.request

import pytest

from app.bridge import Bridge
from app.widgets.server_panel import ServerPanel


@pytest.fixture
def bridge(qtbot):
    b = Bridge()
    yield b
    b.shutdown()


@pytest.mark.slow
def test_the_switch_serves_and_the_panel_counts(qtbot, bridge, gemma_model):
    panel = ServerPanel(bridge, str(gemma_model))
    qtbot.addWidget(panel)
    panel.port.setValue(0)  # any free port
    panel.parallel.setValue(1)
    with qtbot.waitSignal(panel.changed, timeout=600_000):
        panel.switch.setChecked(True)
    assert bridge.server is not None and panel.switch.isChecked()
    assert bridge.server.url in panel.address.text()
    body = json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}).encode()
    request = urllib.request.Request(bridge.server.url + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as r:
        assert json.loads(r.read())["choices"]
    panel.refresh()
    assert panel.requests.text().startswith("1")
    assert "POST /v1/chat/completions" in panel.log_view.toPlainText()
    with qtbot.waitSignal(panel.changed, timeout=60_000):
        panel.switch.setChecked(False)
    assert bridge.server is None and panel.address.text() == "Stopped"
