"""Every command that writes, on a really full disk: one line naming the file, nothing changed.

The disk is a tmpfs filled to its last page in a private mount namespace (tests/full_disk.py),
so each command meets a real ENOSPC wherever it first writes: Python's files, HDF5's, torch's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deg_core.cli import main
from tests.pipeline import TINY

HERE = Path(__file__).parent
BORIS = HERE / "interop" / "data" / "boris_events.csv"


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "mkdir -p /tmp/.deg_ns_probe && mount -t tmpfs -o size=1m tmpfs /tmp/.deg_ns_probe"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", probe], capture_output=True)
    return done.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _namespaces_work(), reason="cannot mount a tmpfs (unshare -rm)"),
]

SETS = [x for s in TINY for x in ("--set", s)]
STEPS = [
    "--set",
    "flow_generator.num_epochs=1",
    "--set",
    "flow_generator.steps_per_epoch=1",
    "--set",
    "feature_extractor.num_epochs=1",
    "--set",
    "feature_extractor.steps_per_epoch=1",
    "--set",
    "sequence.num_epochs=1",
    "--set",
    "sequence.steps_per_epoch=1",
]


def _deg(*argv) -> None:
    code = main([str(a) for a in argv])
    assert code == 0, argv


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_video_module):
    """A project with two labelled 60-frame videos, a flow and a feature run, features inferred."""
    tmp = tmp_path_factory.mktemp("fulldisk")
    _deg("init", tmp, "--name", "full", "--behaviors", "groom,rear")
    root = tmp / "full_deepethogram"
    vids = [make_video_module(f"m{i}.mp4", n=60, seed=i) for i in (1, 2)]
    _deg("add-videos", root, *vids)
    _deg("split", root, "m1", "train")
    _deg("split", root, "m2", "val")
    for key in ("m1", "m2"):
        bouts = tmp / f"{key}_bouts.csv"
        bouts.write_text("start,stop,behavior\n5,20,groom\n30,45,rear\n")
        _deg("import-labels", root, key, bouts)
    _deg("train", "flow", root, "--device", "cpu", *SETS, *STEPS)
    _deg("train", "features", root, "--device", "cpu", *SETS, *STEPS)
    _deg("infer", "features", root, "--device", "cpu")
    third = make_video_module("m3.mp4", n=60, seed=3)
    labels = tmp / "labels.csv"
    labels.write_text(",background,groom,rear\n" + "".join(f"{i},1,0,0\n" for i in range(60)))
    return root, third, labels


@pytest.fixture(scope="module")
def make_video_module(tmp_path_factory):
    from deg_core.video import write_video
    from tests.conftest import moving_square_frames

    folder = tmp_path_factory.mktemp("videos")

    def _make(name: str, n: int, seed: int) -> Path:
        path = folder / name
        write_video(path, moving_square_frames(n, 48, 64, seed), fps=30)
        return path

    return _make


def test_every_writing_command_is_one_line_on_a_full_disk(trained, tmp_path):
    root, third, labels = trained
    commands = [
        ["add-videos", "{P}", str(third)],
        ["import-labels", "{P}", "m1", str(labels)],
        ["import-labels", "{P}", "m1", str(labels.with_name("m1_bouts.csv"))],
        ["import-labels", "{P}", "m1", str(BORIS), "--format", "boris"],
        ["behaviors", "{P}", "add", "dig"],
        ["behaviors", "{P}", "rename", "groom", "preen"],
        ["behaviors", "{P}", "remove", "rear"],
        ["split", "{P}", "m1", "test"],
        ["remove-video", "{P}", "m2"],
        ["export", "boris", "{P}"],
        ["export", "nwb", "{P}"],
        ["train", "flow", "{P}", "--device", "cpu", *SETS, *STEPS],
        # room for the run's config, not for its first checkpoint
        [["train", "flow", "{P}", "--device", "cpu", *SETS, *STEPS], 64],
        ["train", "sequence", "{P}", "--device", "cpu", *SETS, *STEPS],
        ["infer", "features", "{P}", "--device", "cpu", "--overwrite"],
    ]
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"project": str(root), "mount": str(tmp_path / "disk"), "commands": commands})
    )
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, str(HERE / "full_disk.py"), str(spec)],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(results) == len(commands)
    bad = []
    for r in results:
        lines = r["stderr"].strip().splitlines()
        errors = [x for x in lines if x.startswith("deg: error:")]
        ok = (
            r["rc"] == 1
            and len(errors) == 1
            and "space left on the device" in errors[0]
            and not any("Traceback" in x for x in lines)
            and not r["changed"]
            and not r["leftovers"]
        )
        if not ok:
            bad.append(
                f"{' '.join(r['argv'][:3])}: rc {r['rc']}, changed {r['changed'][:4]}, "
                f"leftovers {r['leftovers'][:4]}, stderr {r['stderr'][-600:]!r}"
            )
    assert not bad, "\n".join(bad)
