"""``deg export nwb``: bouts, probabilities and the video, read back with pynwb; and the
one-line install hint when pynwb is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from deg_core.cli import main
from deg_core.errors import DegError
from deg_core.interop.nwb import export_nwb
from deg_core.labels.labels import Labels
from tests.conftest import snapshot
from tests.interop.conftest import RUN, fake_sequence_outputs


def _labelled(project) -> Labels:
    lab = Labels.empty(60, project.behaviors).finalize()
    lab.array[3:15, 0] = lab.array[27:45, 0] = 1
    lab.array[22:31, 1] = 1
    project.save_labels("m1", lab)
    return lab


def test_nwb_holds_bouts_probabilities_and_the_video(video_project, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    _labelled(video_project)
    probs = np.linspace(0, 1, 120, dtype=np.float32).reshape(60, 2)
    fake_sequence_outputs(video_project, "m1", probs)
    out = tmp_path / "nwb"
    [(path, notes)] = export_nwb(video_project, ["m1"], out).items()
    assert path == out / "m1.nwb" and notes == []
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        labels = nwb.intervals["behavior_labels"].to_dataframe()
        assert labels["behavior"].tolist() == ["groom", "rear", "groom"]
        np.testing.assert_allclose(labels["start_time"], [3 / 30, 22 / 30, 27 / 30])
        np.testing.assert_allclose(labels["stop_time"], [15 / 30, 31 / 30, 45 / 30])
        pred = nwb.intervals["behavior_predictions"].to_dataframe()
        # P > 0.5 from frame 30 (groom: column 0 of linspace) and 29 (rear) to the end
        assert set(pred["behavior"]) == {"groom", "rear"}
        np.testing.assert_allclose(pred["stop_time"], [2.0, 2.0])
        p = nwb.processing["behavior"]["behavior_probabilities"]
        np.testing.assert_allclose(p.data[:], probs)
        assert p.rate == pytest.approx(30.0) and p.comments == "groom,rear"
        assert RUN in p.description
        video = nwb.acquisition["video"]
        assert video.format == "external" and video.rate == pytest.approx(30.0)
        ext = Path(video.external_file[0])
        assert not ext.is_absolute()  # relative to the NWB file's folder
        assert (out / ext).resolve() == video_project.record("m1").video.resolve()


def test_a_table_without_bouts_is_written_empty(video_project, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    _labelled(video_project)
    fake_sequence_outputs(video_project, "m1", np.zeros((60, 2), np.float32))
    [path] = export_nwb(video_project, None, tmp_path)
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        pred = io.read().intervals["behavior_predictions"]
        assert len(pred) == 0 and "behavior" in pred.colnames


def test_nwb_without_predictions_notes_it(video_project, tmp_path, capsys):
    pytest.importorskip("pynwb")
    _labelled(video_project)
    code = main(["export", "nwb", str(video_project.root), "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"wrote {tmp_path / 'm1.nwb'} (no predictions (" in out


def test_without_pynwb_one_line_says_how_to_install(video_project, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)  # import pynwb now raises ImportError
    with pytest.raises(DegError, match="uv sync --extra nwb"):
        export_nwb(video_project, None, tmp_path / "out")
    before = snapshot(video_project.root)
    code = main(["export", "nwb", str(video_project.root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "uv sync --extra nwb" in err and "pip install deg[nwb]" in err
    assert snapshot(video_project.root) == before and not (tmp_path / "out").exists()
