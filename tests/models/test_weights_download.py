"""``deg weights download`` against a local HTTP server (127.0.0.1, Range-capable); never the
internet. Files are small generated checkpoints named like torchvision's."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from deg_core.cli import main
from deg_core.models.weights import WeightsError, download, imagenet_state_dict
from deg_core.models.weights.download import download_verified
from deg_core.train.pretrained import find_start_checkpoint, start_weights_line


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and srv.ranges:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", srv.content_type)
        self.end_headers()
        cut, srv.cut_after = srv.cut_after, None  # only the next response is cut
        self.wfile.write(body if cut is None else body[:cut])

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    files: dict[str, bytes]
    requests: list[tuple[str, str | None]]
    ranges = True
    cut_after: int | None = None
    content_type = "application/octet-stream"


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.requests = {}, []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"  # type: ignore[attr-defined]
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch hub and deg caches; no mirror variables from the environment."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("DEG_CACHE_DIR", str(tmp_path / "degcache"))
    for var in ("DEG_WEIGHTS_URL", "DEG_IMAGENET_URL", "DEG_DEEPETHOGRAM_URL"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def checkpoint_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    torch.save(
        {"conv1.weight": torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(seed))},
        buf,
    )
    return buf.getvalue()


@pytest.fixture
def fake_resnet18(server, caches, monkeypatch):
    """A small checkpoint served as resnet18-<its sha256 prefix>.pth, which imagenet.py expects."""
    data = checkpoint_bytes()
    name = f"resnet18-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    from deg_core.models import start_weights

    monkeypatch.setitem(start_weights.IMAGENET_FILES, "resnet18", (name,))
    monkeypatch.setenv("DEG_IMAGENET_URL", server.url + "/models")
    server.files[f"/models/{name}"] = data
    return name, data


def hub_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def test_torchvision_sources_are_the_real_ones():
    assert download.imagenet_url("resnet18-f37072fd.pth") == (
        "https://download.pytorch.org/models/resnet18-f37072fd.pth"
    )
    assert download.hash_prefix("resnet50-0676ba61.pth") == "0676ba61"


def test_imagenet_download_lands_where_the_loader_looks(fake_resnet18, caches):
    name, data = fake_resnet18
    assert imagenet_state_dict("resnet18") is None
    (path,) = download.download_imagenet(["resnet18"], progress=False)
    assert path == hub_file(name) and path.read_bytes() == data
    assert not path.with_name(name + ".part").exists()
    state = imagenet_state_dict("resnet18")
    assert state is not None and set(state) == {"conv1.weight"}


def test_a_file_already_there_is_not_downloaded_again(fake_resnet18, server):
    download.download_imagenet(["resnet18"], progress=False)
    n = len(server.requests)
    assert download.download_imagenet(["resnet18"], progress=False) == [hub_file(fake_resnet18[0])]
    assert len(server.requests) == n


def test_a_cut_download_resumes_with_a_range_request(server, caches):
    data = checkpoint_bytes(1) * 20
    prefix = hashlib.sha256(data).hexdigest()[:8]
    server.files["/f.pth"] = data
    dest = caches / "out" / f"f-{prefix}.pth"
    server.cut_after = len(data) // 3
    with pytest.raises(WeightsError, match=r"run the command again to resume") as err:
        download_verified(server.url + "/f.pth", dest, prefix, progress=False)
    assert "\n" not in str(err.value) and not dest.exists()
    part = dest.with_name(dest.name + ".part")
    assert part.stat().st_size == len(data) // 3
    download_verified(server.url + "/f.pth", dest, prefix, progress=False)
    assert dest.read_bytes() == data and not part.exists()
    assert server.requests[-1] == ("/f.pth", f"bytes={len(data) // 3}-")


def test_a_truncated_partial_file_resumes(server, caches):
    data = checkpoint_bytes(2)
    prefix = hashlib.sha256(data).hexdigest()[:8]
    server.files["/g.pth"] = data
    dest = caches / "g.pth"
    dest.with_name("g.pth.part").write_bytes(data[:100])
    download_verified(server.url + "/g.pth", dest, prefix, progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [("/g.pth", "bytes=100-")]


def test_a_server_without_range_support_restarts_the_download(server, caches):
    data = checkpoint_bytes(3)
    prefix = hashlib.sha256(data).hexdigest()[:8]
    server.files["/h.pth"], server.ranges = data, False
    dest = caches / "h.pth"
    dest.with_name("h.pth.part").write_bytes(b"stale bytes of another file")
    download_verified(server.url + "/h.pth", dest, prefix, progress=False)
    assert dest.read_bytes() == data


def test_a_corrupted_download_is_refused_and_nothing_installed(fake_resnet18, server):
    name, data = fake_resnet18
    server.files[f"/models/{name}"] = data[:-1] + bytes([data[-1] ^ 0xFF])
    with pytest.raises(WeightsError, match=r"corrupted download: its SHA-256 starts") as err:
        download.download_imagenet(["resnet18"], progress=False)
    assert "\n" not in str(err.value) and name in str(err.value)
    assert not hub_file(name).exists() and not hub_file(name + ".part").exists()
    assert imagenet_state_dict("resnet18") is None


def test_a_web_page_instead_of_the_file_is_refused(fake_resnet18, server):
    server.content_type = "text/html; charset=utf-8"
    with pytest.raises(WeightsError, match="sent a web page"):
        download.download_imagenet(["resnet18"], progress=False)
    assert not hub_file(fake_resnet18[0]).exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_is_one_line(fake_resnet18, monkeypatch, capsys):
    monkeypatch.setenv("DEG_IMAGENET_URL", f"http://127.0.0.1:{closed_port()}/models")
    with pytest.raises(WeightsError, match=r"cannot reach the server .*offline\?") as err:
        download.download_imagenet(["resnet18"], progress=False)
    assert "\n" not in str(err.value)
    assert main(["weights", "download", "imagenet", "--arch", "resnet18", "--no-progress"]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and "cannot reach the server" in err_lines[0]
    assert not hub_file(fake_resnet18[0]).exists()


def test_cli_imagenet(fake_resnet18, capsys):
    assert main(["weights", "download", "imagenet", "--arch", "resnet18", "--no-progress"]) == 0
    assert f"ImageNet weights: {hub_file(fake_resnet18[0])}" in capsys.readouterr().out
    assert main(["weights", "download", "imagenet", "some_project"]) == 1
    assert "drop PROJECT" in capsys.readouterr().err


# -- DeepEthogram's archive -----------------------------------------------------------

FLOW = "200221_115158_TinyMotionNet"
DEGF = "200415_125824_hidden_two_stream_kinetics_degf"


def deg_archive(*, corrupt: bool = False, members: tuple[str, ...] = (FLOW, DEGF)) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i, run in enumerate(members):
            zf.writestr(f"pretrained_models/{run}/checkpoint.pt", checkpoint_bytes(i))
            zf.writestr(f"pretrained_models/{run}/hyperparameters.yaml", "arch: x\n")
    data = buf.getvalue()
    if corrupt:  # flip a byte inside the first member's data: its CRC fails
        at = data.index(b"PK\x03\x04") + 200
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    return data


@pytest.fixture
def deg_server(server, caches, monkeypatch):
    monkeypatch.setenv("DEG_WEIGHTS_URL", server.url + "/mirror")
    server.files["/mirror/pretrained_models.zip"] = deg_archive()
    return server


def test_deepethogram_into_a_project_is_found_by_auto(deg_server, project, capsys):
    pre = project.models_dir / "pretrained"
    assert main(["weights", "download", "deepethogram", str(project.root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"-> {pre}" in out and FLOW in out and DEGF in out
    assert find_start_checkpoint(pre, "TinyMotionNet") == pre / FLOW / "checkpoint.pt"
    assert find_start_checkpoint(pre, "resnet18") == pre / DEGF / "checkpoint.pt"
    assert not list(pre.parent.glob("*.part")) and not list(pre.parent.glob(".deg-unpack-*"))
    line = start_weights_line("features", "resnet18", "auto", pre)
    assert "starts from DeepEthogram's pretrained" in line
    assert main(["status", str(project.root)]) == 0
    assert "start weights: flow generator (TinyMotionNet) starts from DeepEthogram's" in (
        capsys.readouterr().out
    )


def test_deepethogram_without_a_project_goes_to_the_user_cache(deg_server, project, caches):
    assert main(["weights", "download", "deepethogram", "--no-progress"]) == 0
    cached = caches / "degcache" / "pretrained" / FLOW / "checkpoint.pt"
    assert cached.is_file()
    # every project's `auto` searches the user cache after its own models/pretrained
    assert find_start_checkpoint(project.models_dir / "pretrained", "TinyMotionNet") == cached


def test_a_corrupted_archive_installs_nothing(deg_server, project, capsys):
    deg_server.files["/mirror/pretrained_models.zip"] = deg_archive(corrupt=True)
    assert main(["weights", "download", "deepethogram", str(project.root), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and ("CRC" in err or "not a readable zip" in err)
    pre = project.models_dir / "pretrained"
    assert not pre.exists() or not any(pre.iterdir())
    assert not list(project.models_dir.glob("*.part"))


def test_an_archive_without_feature_checkpoints_is_refused(deg_server, project, capsys):
    deg_server.files["/mirror/pretrained_models.zip"] = deg_archive(members=(FLOW,))
    assert main(["weights", "download", "deepethogram", str(project.root), "--no-progress"]) == 1
    assert "no feature-extractor checkpoint" in capsys.readouterr().err


def test_an_archive_with_unsafe_paths_is_refused(caches):
    path = caches / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../outside/checkpoint.pt", b"x")
    with pytest.raises(WeightsError, match="unsafe path"):
        download.install_deg_archive(path, caches / "target")
    assert not (caches / "outside").exists()


def test_an_archive_downloaded_by_hand_installs_offline(caches, project, capsys):
    archive = caches / "pretrained_models.zip"
    archive.write_bytes(deg_archive())
    argv = ["weights", "download", "deepethogram", str(project.root), "--archive", str(archive)]
    assert main([*argv, "--no-progress"]) == 0
    assert (project.models_dir / "pretrained" / DEGF / "checkpoint.pt").is_file()
    assert main([*argv, "--no-progress"]) == 0  # again: nothing replaced
    assert "already there" in capsys.readouterr().out


def test_status_says_how_to_get_better_weights(caches, project, capsys):
    assert main(["status", str(project.root)]) == 0
    out = capsys.readouterr().out
    assert "start weights: feature extractor (resnet18) starts from scratch: " in out
    assert "`deg weights download deepethogram PROJECT`" in out
    assert "`deg weights download imagenet`" in out
