import json

import numpy as np
import pytest

from ecgwatch import analyze
from ecg_fixtures import beat_train, data_dir, regular_r_times

FS = 360


def _csv(tmp_path, x, *, with_time=False):
    p = tmp_path / "rec.csv"
    t = np.arange(x.size) / FS
    rows = [f"{a:.6f},{b:.5f}" for a, b in zip(t, x)] if with_time else [f"{b:.5f}" for b in x]
    p.write_text(("time_s,mV\n" if with_time else "mV\n") + "\n".join(rows) + "\n")
    return p


def test_a_csv_with_an_asystole_reports_one_asystole_episode(tmp_path, capsys):
    r = np.concatenate([regular_r_times(70, 30), 36.0 + regular_r_times(70, 24)])
    p = _csv(tmp_path, beat_train(r, FS, 60, noise=0.02), with_time=True)
    assert analyze.main([str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    eps = [e for e in out["episodes"] if e["condition"] == "asystole"]
    assert len(eps) == 1
    last_beat = r[r < 30][-1]
    assert abs(eps[0]["onset"] - last_beat) <= 0.5
    assert abs(out["fs"] - FS) < 1e-3 and out["beats"] == pytest.approx(r.size, abs=1)


def test_one_column_csv_needs_a_rate(tmp_path, capsys):
    p = _csv(tmp_path, beat_train(regular_r_times(60, 20), FS, 20))
    assert analyze.main([str(p)]) == 1
    assert "--fs" in capsys.readouterr().err
    assert analyze.main([str(p), "--fs", str(FS)]) == 0
    assert "no alarm episodes" in capsys.readouterr().out


def test_bad_files_are_clear_errors(tmp_path, capsys):
    junk = tmp_path / "junk.csv"
    junk.write_text("mV\n0.1\nnot-a-number\n")
    assert analyze.main([str(junk), "--fs", "250"]) == 1
    assert "line 3" in capsys.readouterr().err
    assert analyze.main([str(tmp_path / "missing")]) == 1
    assert "No WFDB header" in capsys.readouterr().err
    p = _csv(tmp_path, np.zeros(100))
    assert analyze.main([str(p), "--fs", "50"]) == 1
    assert "50 Hz" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.skipif(not (data_dir() / "mitdb").is_dir(), reason="MIT-BIH data not found")
def test_a_wfdb_record_with_long_pauses(capsys):
    assert analyze.main([str(data_dir() / "mitdb" / "232"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    conds = {e["condition"] for e in out["episodes"]}
    assert {"pause", "asystole"} <= conds          # 232 has pauses of up to 6 s
    assert 1700 < out["beats"] < 1850               # 1780 annotated beats
