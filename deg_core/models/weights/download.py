"""Downloading start weights (``deg weights download``).

Two sources:

* ``imagenet``: torchvision's ImageNet files, into torch's hub cache
  (``torch.hub.get_dir()/checkpoints``), where :mod:`.imagenet` and torchvision look. The
  file names carry the first hex digits of the file's SHA-256 (``resnet18-f37072fd.pth``);
  a download whose digest does not start with them is refused, as ``torch.hub`` does.
* ``deepethogram``: DeepEthogram's ``pretrained_models`` archive (the Google Drive file its
  README links), unpacked into a project's ``models/pretrained/`` or the user cache
  (:func:`user_pretrained_dir`) that ``weights: auto`` also searches. DEG publishes no
  checksum for it, so the archive is checked for what it must be instead: a zip whose CRCs
  hold and which holds flow-generator and feature-extractor checkpoints.

Downloads stream into ``<dest>.part`` (an interrupted one resumes with an HTTP Range
request) and are renamed into place only once verified. Base URLs are overridable for
mirrors and tests: ``DEG_IMAGENET_URL`` (a folder), ``DEG_DEEPETHOGRAM_URL`` (the archive),
or ``DEG_WEIGHTS_URL`` (a folder holding both, the archive as ``pretrained_models.zip``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from deg_core.models.start_weights import cache_dir, user_pretrained_dir  # noqa: F401
from deg_core.models.weights.checkpoint import WeightsError

IMAGENET_BASE = "https://download.pytorch.org/models"
DEG_ARCHIVE_ID = "1ntIZVbOG1UAiFVlsAAuKEBEVCVevyets"  # DEG README's Google Drive link
DEG_ARCHIVE_PAGE = f"https://drive.google.com/file/d/{DEG_ARCHIVE_ID}/view"
# confirm=t skips Drive's "cannot scan for viruses" page for large files
DEG_ARCHIVE_URL = (
    f"https://drive.usercontent.google.com/download?id={DEG_ARCHIVE_ID}&export=download&confirm=t"
)
DEG_ARCHIVE_NAME = "pretrained_models.zip"
_CHECKPOINT_SUFFIXES = (".pt", ".ckpt", ".pth")
_FLOW_NEEDLES = ("motionnet",)
_FEATURE_NEEDLES = ("hidden_two_stream", "degf", "degm", "degs")
_CHUNK = 1 << 20
_TIMEOUT_S = 30


def _base(specific: str) -> str | None:
    url = os.environ.get(specific) or os.environ.get("DEG_WEIGHTS_URL")
    return url.rstrip("/") if url else None


def imagenet_url(filename: str) -> str:
    return f"{_base('DEG_IMAGENET_URL') or IMAGENET_BASE}/{filename}"


def deg_archive_url() -> str:
    if os.environ.get("DEG_DEEPETHOGRAM_URL"):
        return os.environ["DEG_DEEPETHOGRAM_URL"]
    base = os.environ.get("DEG_WEIGHTS_URL", "").rstrip("/")
    return f"{base}/{DEG_ARCHIVE_NAME}" if base else DEG_ARCHIVE_URL


def _open(url: str, start: int):
    request = urllib.request.Request(url, headers={"User-Agent": "deg"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the partial file already holds everything
            return None
        raise WeightsError(f"the server answered HTTP {e.code} {e.reason}", url) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise WeightsError(
            f"cannot reach the server ({reason}); offline? Download it on a machine with "
            "internet or set DEG_WEIGHTS_URL to a mirror",
            url,
        ) from None


def fetch(url: str, part: Path, *, progress: bool = True) -> Path:
    """Stream ``url`` into ``part``, continuing a partial file; returns ``part``.

    A lost connection keeps what arrived (the next call resumes); a server that ignores
    the Range request makes the download start over.
    """
    from tqdm.auto import tqdm

    part.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, start)
    if response is None:
        return part
    with response:
        if start and response.status != 206:
            start = 0  # the whole file again
        length = response.headers.get("Content-Length")
        total = start + int(length) if length and length.isdigit() else None
        content_type = response.headers.get("Content-Type", "")
        if "text/html" in content_type:
            raise WeightsError("the server sent a web page, not the file", url)
        bar = tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        )
        with bar, open(part, "ab" if start else "wb") as out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (TimeoutError, OSError, http.client.HTTPException) as e:
                    raise WeightsError(
                        f"connection lost after {out.tell() >> 20} MiB ({e}); run the command "
                        "again to resume",
                        url,
                    ) from None
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
            got = out.tell()
    if total is not None and got < total:
        raise WeightsError(
            f"the download stopped at {got} of {total} bytes; run the command again to resume", url
        )
    return part


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_prefix(filename: str) -> str:
    """The SHA-256 prefix torchvision writes into its file names (``name-<hex>.pth``)."""
    match = re.search(r"-([0-9a-f]{6,})\.", filename)
    if match is None:
        raise ValueError(f"no hash prefix in {filename!r}")
    return match.group(1)


def download_verified(url: str, dest: Path, sha256_prefix: str, *, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` if its SHA-256 starts with ``sha256_prefix``.

    A mismatch removes the partial file and raises; ``dest`` is only ever a verified file
    (renamed into place).
    """
    part = dest.with_name(dest.name + ".part")
    fetch(url, part, progress=progress)
    digest = sha256_of(part)
    if not digest.startswith(sha256_prefix):
        part.unlink()
        raise WeightsError(
            f"corrupted download: its SHA-256 starts {digest[: len(sha256_prefix)]}, expected "
            f"{sha256_prefix}; removed it, nothing installed (run again)",
            url,
        )
    os.replace(part, dest)
    return dest


def download_imagenet(archs: list[str], *, progress: bool = True) -> list[Path]:
    """torchvision's ImageNet weights of each arch into the torch hub cache; returns the files.

    Files already there are kept (reported, not downloaded again).
    """
    from deg_core.models.weights.imagenet import imagenet_paths

    out = []
    for arch in archs:
        paths = imagenet_paths(arch)
        if not paths:
            raise WeightsError(f"no ImageNet weights exist for {arch} (a 3-D network)")
        existing = next((p for p in paths if p.is_file()), None)
        if existing is not None:
            out.append(existing)
            continue
        dest = paths[0]
        out.append(
            download_verified(
                imagenet_url(dest.name), dest, hash_prefix(dest.name), progress=progress
            )
        )
    return out


def _members(archive: zipfile.ZipFile, source: str) -> dict[str, PurePosixPath]:
    """Archive member -> path inside the destination (DEG's top folder removed; unsafe refused)."""
    names = [n for n in archive.namelist() if not n.startswith("__MACOSX/") and not n.endswith("/")]
    out = {}
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or "\\" in name:
            raise WeightsError(f"refused: the archive holds an unsafe path {name!r}", source)
        if len(path.parts) > 1 and path.parts[0] in ("pretrained_models", "pretrained"):
            path = PurePosixPath(*path.parts[1:])
        out[name] = path
    return out


def check_deg_archive(path: Path, source: str | None = None) -> dict[str, PurePosixPath]:
    """Raise unless ``path`` is an intact zip holding DEG flow and feature checkpoints."""
    where = source or str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            members = _members(archive, where)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise WeightsError(f"not a readable zip archive ({e})", where) from None
    if bad is not None:
        raise WeightsError(f"corrupted archive: {bad} fails its CRC check", where)
    ckpts = [str(p).lower() for p in members.values() if p.suffix in _CHECKPOINT_SUFFIXES]
    has_flow = any(n in c for c in ckpts for n in _FLOW_NEEDLES)
    has_features = any(n in c for c in ckpts for n in _FEATURE_NEEDLES)
    if not (has_flow and has_features):
        raise WeightsError(
            "not DeepEthogram's pretrained_models archive: it holds no "
            f"{'flow-generator' if not has_flow else 'feature-extractor'} checkpoint",
            where,
        )
    return members


def install_deg_archive(archive: Path, target: Path, source: str | None = None) -> list[str]:
    """Unpack a checked DEG archive into ``target``; returns the model folders added.

    Everything is unpacked beside ``target`` first, then each model folder is renamed in;
    folders already in ``target`` are left as they are.
    """
    members = check_deg_archive(archive, source)
    target.mkdir(parents=True, exist_ok=True)
    added = []
    staging = Path(tempfile.mkdtemp(prefix=".deg-unpack-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            for name, rel in members.items():
                dest = staging.joinpath(*rel.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
        for entry in sorted(staging.iterdir()):
            if not (target / entry.name).exists():
                os.replace(entry, target / entry.name)
                added.append(entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return added


def download_deepethogram(
    target: Path, *, archive: Path | None = None, progress: bool = True
) -> tuple[list[str], str]:
    """DEG's pretrained models into ``target``; returns (folders added, where they came from).

    ``archive``: a ``pretrained_models.zip`` already downloaded (e.g. in a browser), used
    instead of the network.
    """
    if archive is not None:
        archive = Path(archive).expanduser()
        if not archive.is_file():
            raise WeightsError("archive not found", archive)
        return install_deg_archive(archive, target), str(archive)
    url = deg_archive_url()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.parent / f"{DEG_ARCHIVE_NAME}.part"
    fetch(url, part, progress=progress)
    try:
        added = install_deg_archive(part, target, url)
    except WeightsError:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()  # a complete but wrong file: the next try starts over
        raise
    part.unlink()
    return added, url
