"""Shared fixtures: tiny generated videos and projects, and a file-tree snapshot."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OPENFIELD = SHARED_DATA / "openfield_mouse_640x480_30fps.mp4"
ARENA = SHARED_DATA / "arena_mouse_1064x1070_25fps.mp4"


def moving_square_frames(n: int = 40, h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) uint8: a noisy background with a square that moves, so frames differ."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 90, size=(h, w, 3), dtype=np.uint8)
    frames = np.repeat(base[None], n, axis=0)
    for t in range(n):
        y = (3 * t) % (h - 10)
        x = (5 * t + seed * 7) % (w - 10)
        frames[t, y : y + 10, x : x + 10] = (220, 180 - (t % 50), 30 + seed * 20 % 200)
    return frames


@pytest.fixture(autouse=True, scope="session")
def _no_user_weight_cache(tmp_path_factory):
    """`weights: auto` also searches deg's user cache (`deg weights download deepethogram`):
    point it at an empty folder so a developer's downloads never change what tests train."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DEG_CACHE_DIR", str(tmp_path_factory.mktemp("deg_cache")))
    yield
    mp.undo()


@pytest.fixture
def make_video(tmp_path):
    """make_video(name, n=40, h=48, w=64, fps=30, seed=0) -> Path of a small H.264 mp4."""
    from deg_core.video import write_video

    def _make(name: str = "mouse1.mp4", n: int = 40, h: int = 48, w: int = 64, fps=30, seed=0):
        folder = tmp_path / "videos"
        folder.mkdir(exist_ok=True)
        path = folder / name
        write_video(path, moving_square_frames(n, h, w, seed), fps=fps)
        return path

    return _make


@pytest.fixture
def project(tmp_path):
    """An empty project with behaviours groom, rear."""
    from deg_core.project.project import Project

    return Project.create(tmp_path, "demo", ["groom", "rear"], labeler="tester")


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under root -> (size, sha1): compare before/after to prove nothing changed."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (
                p.stat().st_size,
                hashlib.sha1(p.read_bytes()).hexdigest(),
            )
        else:
            out[str(p.relative_to(root)) + "/"] = (0, "")
    return out


def needs_shared_data():
    return pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")


def pytest_collection_modifyitems(config, items):
    """GPU tests run only where CUDA is available."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# the tiny trained pipeline (tests/pipeline.py), shared by every module that uses it
from tests.pipeline import feature_run, flow_run, tiny_project  # noqa: E402, F401
