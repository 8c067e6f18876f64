"""The Labeler on a video of two animals in a real JupyterLab.

A generated two-animal video with tracks (the true centres, two box sizes, a stretch where
the animals "touched" so that the frame after it is a swap candidate). Through the page only:
label walk for the first animal with keys, switch with "]" and label groom for the second,
switch back with the picker; a click on the other animal's rows selects it without an edit;
Ctrl+S writes each animal's own CSV (and not the one-animal file). The frame view outlines the
selected animal where its tracks say (in follow mode too), and "s" goes to the swap candidate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.browser.test_labeler_browser import (
    fnv1a,
    go_to,
    next_paint,
    press,
    root_data,
    wait_data,
)

pytestmark = pytest.mark.browser

N_FRAMES = 72
SIZE = 96  # square frames, px
NAMES = ["alpha", "beta"]  # the tracks' names: the Labeler shows them
EXTENT = ((16.0, 12.0), (12.0, 9.0))  # each animal's box w, h (source px)
MERGED = slice(30, 36)  # the animals shared a blob here: frame 36 is a swap candidate


def make_project(parent: Path) -> tuple[Path, str, Any]:
    """A project of 2 animals per video with one generated video and its tracks."""
    from deg_core.project.project import Project
    from deg_core.tracking.animals import AnimalTracks
    from deg_core.tracking.project_tracks import save_animal_tracks
    from deg_core.workflow.synthetic_multi import MULTI_BEHAVIORS, MultiSpec, write_multi_video

    video = parent / "pair.mp4"
    truth = write_multi_video(video, MultiSpec(n_animals=2, n_frames=N_FRAMES, size=SIZE, seed=1))
    project = Project.create(parent, "pair", list(MULTI_BEHAVIORS))
    raw = yaml.safe_load(project.config_path.read_text())
    raw["project"]["animals"] = 2
    project.config_path.write_text(yaml.safe_dump(raw))
    project.reload()
    project.add_videos([video])
    key = project.video_keys()[0]
    assert project.n_animals(key) == 2
    center = truth.centers.astype(np.float32)
    extent = np.broadcast_to(np.array(EXTENT, np.float32), center.shape).copy()
    merged = np.zeros(N_FRAMES, bool)
    merged[MERGED] = True
    tracks = AnimalTracks(center, extent, list(NAMES), "csv", (SIZE, SIZE), merged)
    save_animal_tracks(project, key, tracks)
    return project.root, key, tracks


def outline(page: Any) -> list[float]:
    return [float(v) for v in root_data(page, "outline").split(",")]


def outline_view(page: Any) -> list[float]:
    return [float(v) for v in root_data(page, "outline-view").split(",")]


def box_at(tracks: Any, frame: int, animal: int) -> np.ndarray:
    """The tracks' box of ``animal`` at ``frame``: centre x, y, w, h (source px)."""
    return np.concatenate([tracks.center[frame, animal], tracks.extent[frame, animal]])


def wait_outline(page: Any, tracks: Any, animal: int) -> int:
    """Wait until the painted frame is the playhead and the outline is ``animal``'s there;
    return that frame."""
    frame = root_data(page, "frame")
    wait_data(page, "painted-frame", frame, timeout=30)
    wait_data(page, "animal", str(animal))
    next_paint(page)
    painted = int(root_data(page, "painted-frame"))
    np.testing.assert_allclose(outline(page), box_at(tracks, painted, animal), atol=1.0)
    return painted


def expected_view(page: Any, box: np.ndarray, zoom: float) -> np.ndarray:
    """The box as the frame canvas must draw it (CSS px): the frame fitted in the canvas,
    then ``zoom`` centred on the box, kept on the image (the follow rule; zoom 1: no pan)."""
    c = page.locator(".deg-lab-frame").evaluate(
        "c => [c.getBoundingClientRect().width, c.getBoundingClientRect().height]"
    )
    W, H = float(c[0]), float(c[1])
    s = min(W / SIZE, H / SIZE)
    o = np.array([(W - SIZE * s) / 2, (H - SIZE * s) / 2])
    d = SIZE * s
    centre = o + (box[:2] + 0.5) * s
    pan = np.zeros(2)
    for i, V in enumerate((W, H)):
        if zoom * d <= V:
            pan[i] = V / 2 - zoom * (o[i] + d / 2)
        else:
            pan[i] = min(-zoom * o[i], max(V - zoom * (o[i] + d), V / 2 - zoom * centre[i]))
    top_left = zoom * (o + (box[:2] - box[2:] / 2 + 0.5) * s) + pan
    return np.concatenate([top_left, zoom * box[2:] * s])


def test_two_animals_label_save_outline_and_swaps(run_notebook, kernel_exec, tmp_path):
    from deg_core.labels.labels import read_labels
    from deg_core.project.project import Project
    from deg_core.workflow.synthetic_multi import MULTI_BEHAVIORS

    root, key, tracks = make_project(tmp_path)
    behaviors = list(MULTI_BEHAVIORS)
    K = len(behaviors)
    page = run_notebook(
        [
            "from deg_widgets.labeler import Labeler\n"
            f"w = Labeler({str(root)!r}, autosave=False)\n"
            "w",
        ]
    )
    lab = page.locator(".deg-lab")
    lab.wait_for(timeout=30_000)
    wait_data(page, "painted-frame", "0", timeout=30)
    assert root_data(page, "n-animals") == "2"
    assert root_data(page, "animal") == "0"
    picker = page.locator(".deg-lab-animal")
    assert picker.is_visible()
    assert picker.locator("option").all_inner_texts() == NAMES
    # the timeline has one block per animal, the selected animal's label rows under the first
    g = page.locator(".deg-lab-timeline").evaluate("c => ({...c.dataset})")
    blocks = [float(y) for y in g["animalY"].split(",")]
    head = float(g["animalHeadH"])
    assert len(blocks) == 2 and float(g["labelY"]) == blocks[0] + head

    # the outline is the selected animal's box at the painted frame; with tracks the view
    # follows it (zoom: a square of max(3 * 16, 96 / 3) = 48 px fills the view's height)
    wait_data(page, "follow", "true")
    wait_outline(page, tracks, 0)
    assert float(root_data(page, "view-zoom")) == pytest.approx(2.0, abs=0.01)
    np.testing.assert_allclose(
        outline_view(page), expected_view(page, box_at(tracks, 0, 0), 2.0), atol=1.5
    )
    lab.focus()
    press(page, "c")  # follow off: the whole frame, no zoom
    wait_data(page, "follow", "false")
    next_paint(page)
    assert root_data(page, "view-zoom") == "1"
    np.testing.assert_allclose(
        outline_view(page), expected_view(page, box_at(tracks, 0, 0), 1.0), atol=1.5
    )
    assert kernel_exec(page, "print(w.follow)").strip() == "False"

    # animal 0 ("alpha"): walk on frames 10..15 by number key recording
    expected = np.full((2, N_FRAMES, K), -1, np.int8)
    go_to(page, 10)
    press(page, "1", *["ArrowRight"] * 5, "1")
    expected[0, 10:16, 0] = 1
    wait_data(page, "labels-hash", fnv1a(expected[0]))
    # "]": animal 1 ("beta"), whose labels are still empty; the outline follows the selection
    press(page, "]")
    wait_data(page, "animal", "1")
    wait_data(page, "labels-hash", fnv1a(expected[1]))
    wait_outline(page, tracks, 1)
    assert int(kernel_exec(page, "print(w.animal)")) == 1
    assert outline(page) != [round(v) for v in box_at(tracks, 15, 0)]
    # animal 1: groom on frames 40..44
    go_to(page, 40)
    press(page, "2", *["ArrowRight"] * 4, "2")
    expected[1, 40:45, 1] = 1
    wait_data(page, "labels-hash", fnv1a(expected[1]))
    # back to animal 0 with the picker: its labels as they were
    picker.select_option("0")
    wait_data(page, "animal", "0")
    wait_data(page, "labels-hash", fnv1a(expected[0]))
    wait_outline(page, tracks, 0)
    assert int(kernel_exec(page, "print(w.animal)")) == 0

    # a press on animal 1's label rows selects it and edits nothing; "[" comes back
    next_paint(page)
    g = page.locator(".deg-lab-timeline").evaluate("c => ({...c.dataset})")
    box = page.locator(".deg-lab-timeline").bounding_box()
    blocks = [float(y) for y in g["animalY"].split(",")]
    x = float(g["plotX"]) + (50.5 - float(g["viewStart"])) / float(g["viewSpan"]) * float(
        g["plotW"]
    )
    y = blocks[1] + head + 0.5 * float(g["labelRowH"])
    page.mouse.click(box["x"] + x, box["y"] + y)
    wait_data(page, "animal", "1")
    wait_data(page, "labels-hash", fnv1a(expected[1]))
    assert root_data(page, "frame") == "44"  # no seek either
    lab.focus()
    press(page, "[")
    wait_data(page, "animal", "0")
    wait_data(page, "labels-hash", fnv1a(expected[0]))
    # a click inside beta's box on the frame selects beta (follow is off: the whole frame)
    painted = wait_outline(page, tracks, 0)
    frame_box = page.locator(".deg-lab-frame").bounding_box()
    bx = expected_view(page, box_at(tracks, painted, 1), 1.0)
    page.mouse.click(frame_box["x"] + bx[0] + bx[2] / 2, frame_box["y"] + bx[1] + bx[3] / 2)
    wait_data(page, "animal", "1")
    wait_outline(page, tracks, 1)
    lab.focus()
    press(page, "[")
    wait_data(page, "animal", "0")
    wait_data(page, "labels-hash", fnv1a(expected[0]))

    # Ctrl+S saves every animal's edits, each in its own file
    project = Project.open(root)
    rec = project.record(key)
    assert not rec.labels_path.exists()
    press(page, "Control+s")
    wait_data(page, "dirty", "false")
    for a in range(2):
        path = project.label_path(key, a)
        assert path.parent.name == f"animal{a}", path
        saved = read_labels(path, behaviors, N_FRAMES).array
        np.testing.assert_array_equal(saved, expected[a], err_msg=f"animal {a}")
    assert not rec.labels_path.exists()  # the one-animal file is not written
    assert kernel_exec(page, "print(w.error == '', w.dirty)").split() == ["True", "False"]

    # "s": the next frame where identities may have swapped (after the merged stretch)
    swaps = [int(f) for f in kernel_exec(page, "print(*w.swap_frames)").split()]
    assert MERGED.stop in swaps
    go_to(page, 0)
    press(page, "s")
    wait_data(page, "frame", str(swaps[0]))
    assert "swapped" in page.locator(".deg-lab-status-text").inner_text()
    press(page, "S")  # none before the first one: the playhead stays, the status says so
    page.wait_for_function(
        "() => /no previous/.test(document.querySelector('.deg-lab-status-text').textContent)",
        timeout=10_000,
        polling=50,
    )
    assert root_data(page, "frame") == str(swaps[0])
    # follow on again: the view zooms on the selected animal at the new frame
    press(page, "c")
    wait_data(page, "follow", "true")
    painted = wait_outline(page, tracks, 0)
    assert float(root_data(page, "view-zoom")) == pytest.approx(2.0, abs=0.01)
    np.testing.assert_allclose(
        outline_view(page), expected_view(page, box_at(tracks, painted, 0), 2.0), atol=1.5
    )
    lab.screenshot(path=str(tmp_path / "labeler_animals.png"))

    # "w": the selected animal and the nearest other trade tracks from the playhead on; the
    # tracks file is rewritten and the outline follows; "w" again swaps them back
    from deg_core.tracking.animals import AnimalTracks

    at = int(root_data(page, "frame"))
    press(page, "w")
    page.wait_for_function(
        "() => /swapped alpha and beta from frame/"
        ".test(document.querySelector('.deg-lab-status-text').textContent)",
        timeout=10_000,
        polling=50,
    )
    swapped = tracks.swap(0, 1, at)
    wait_outline(page, swapped, 0)
    saved = AnimalTracks.load(root / "DATA" / key / f"{key}_animals.h5")
    np.testing.assert_array_equal(saved.center, swapped.center)
    press(page, "w")
    code = (
        "import numpy as np; "
        f"print(*np.frombuffer(w.tracks, np.float32).reshape(-1, 2, 4)[{at}, 0, :2])"
    )
    for _ in range(50):  # the key's message and this cell's reach the kernel separately
        back = [float(v) for v in kernel_exec(page, code).split()]
        if np.allclose(back, tracks.center[at, 0]):
            break
        page.wait_for_timeout(200)
    np.testing.assert_allclose(back, tracks.center[at, 0])  # animal 0's own again
    assert not np.allclose(back, swapped.center[at, 0])
    wait_outline(page, tracks, 0)  # back as they were (Python has swapped: its reply came after)
    saved = AnimalTracks.load(root / "DATA" / key / f"{key}_animals.h5")
    np.testing.assert_array_equal(saved.center, tracks.center)

    # the help lists the animal keys (a one-animal video's leaves them out)
    press(page, "?")
    help_box = page.locator(".deg-lab-help")
    assert "[ / ]" in help_box.inner_text() and "s / Shift+S" in help_box.inner_text()
    press(page, "Escape")
    assert page.locator(".deg-lab-error").inner_text() == ""
