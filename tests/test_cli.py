"""The ``ecgwatch`` command line: serve end to end, errors, delegation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types
import uuid

import pytest

from conftest import WAIT_S
from ecgwatch import cli
from ecgwatch.broker import free_port
from ingest.topics import STATUS_TOPIC


def test_serve_with_its_embedded_broker_goes_online_and_stops_cleanly_on_sigterm(
        mqtt_collector) -> None:
    port, client_id = free_port(), f"cli-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecgwatch.cli", "serve", "--port", str(port),
         "--client-id", client_id, "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        banner = proc.stdout.readline()
        assert f"mqtt://127.0.0.1:{port}" in banner
        watch = mqtt_collector(f"mqtt://127.0.0.1:{port}", [STATUS_TOPIC])
        watch.wait_for(lambda ms: any(m.json()["service"] == client_id
                                      and m.json()["state"] == "online" for m in ms))
        proc.send_signal(signal.SIGTERM)
        # The broker is embedded in the process, so "offline" may not reach us
        # before it closes; a clean exit code is what SIGTERM promises.
        assert proc.wait(WAIT_S) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_reports_an_unreachable_broker_and_exits_1(capsys) -> None:
    port = free_port()
    code = cli.main(["serve", "--broker", f"mqtt://127.0.0.1:{port}",
                     "--connect-timeout", "0.3", "--log-level", "ERROR"])
    assert code == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("url, words", [("http://example.org", "scheme"),
                                        ("mqtt://user:pw@example.org", "credentials")])
def test_serve_rejects_a_bad_broker_url_before_connecting(url, words, capsys) -> None:
    assert cli.main(["serve", "--broker", url]) == 1
    assert words in capsys.readouterr().err


def test_simulate_and_analyze_get_their_arguments_unparsed(monkeypatch) -> None:
    seen = {}
    for name in ("simulate", "analyze"):
        fake = types.ModuleType(f"ecgwatch.{name}")
        fake.main = lambda argv, name=name: seen.setdefault(name, argv) and 0
        monkeypatch.setitem(sys.modules, f"ecgwatch.{name}", fake)
    assert cli.main(["simulate", "--broker", "mqtt://h:1", "--devices", "3"]) == 0
    assert cli.main(["analyze", "rec.dat", "--help"]) == 0
    assert seen == {"simulate": ["--broker", "mqtt://h:1", "--devices", "3"],
                    "analyze": ["rec.dat", "--help"]}



@pytest.mark.parametrize("content, words", [
    ('{"alarms": {"asystole_s": -1}}', "asystole_s=-1"),
    ('{"alarms": {"asystol_s": 5}}', "asystol_s"),
    ('{"fs": 250, "speed": 2}', "speed"),
    ('{"alarms": ', "not valid JSON"),
])
def test_serve_refuses_a_bad_config_file_with_a_sentence(tmp_path, content, words, capsys):
    f = tmp_path / "ecgwatch.json"
    f.write_text(content)
    port = free_port()
    code = cli.main(["serve", "--broker", f"mqtt://127.0.0.1:{port}", "--config", str(f),
                     "--connect-timeout", "0.3", "--log-level", "ERROR"])
    assert code == 1
    assert words in capsys.readouterr().err


def test_a_config_file_sets_the_alarm_limits():
    from detect.config import DetectorConfig
    cfg = DetectorConfig.from_dict({"alarms": {"asystole_s": 6, "tachy_bpm": 150},
                                    "mains_hz": [50]})
    assert cfg.alarms.asystole_s == 6 and cfg.alarms.tachy_bpm == 150
    assert cfg.alarms.brady_bpm == 40 and cfg.mains_hz == (50,)


def test_serve_with_a_missing_beat_model_fails_at_start_up(tmp_path, capsys):
    port = free_port()
    code = cli.main(["serve", "--broker", f"mqtt://127.0.0.1:{port}", "--beat-model",
                     str(tmp_path / "none.onnx"), "--log-level", "ERROR"])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err
