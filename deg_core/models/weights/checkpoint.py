"""Checkpoints
``load_checkpoint`` reads with ``torch.load(weights_only=True)``: tensors and plain containers
only, never pickled code. ``save_checkpoint`` writes atomically and refuses anything that
``load_checkpoint`` could not read back.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, cast

import torch

from deg_core.errors import DegError
from deg_core.fileio import atomic_open

log = logging.getLogger("deg_core.models.weights")

REFUSED_PICKLE = (
    "refused: the checkpoint contains pickled Python objects, not only tensors "
    "(deg loads weights with weights_only=True)"
)
# phrases of torch's weights-only unpickler when the file references classes or functions (as
# opposed to bytes that are not a pickle at all)
_PICKLED_OBJECT_MARKERS = ("GLOBAL ", "add_safe_globals", "unrecognized function")


class WeightsError(DegError):
    """A weights file is missing, unreadable, unsafe, or does not fit the model."""


def load_checkpoint(path: str | Path, *, mmap: bool = False) -> dict:
    """Read a checkpoint with ``torch.load(map_location="cpu", weights_only=True)``.

    Missing, unreadable or corrupt files, files holding pickled objects other than tensors and
    plain containers, and files whose top level is not a dict raise a one-line WeightsError.
    ``mmap``: map the file instead of reading it, so tensors stay on disk until used (the
    small values of a big checkpoint, cheaply; files ``torch.save`` wrote, as deg's are).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError("checkpoint file not found", path)
    if not path.is_file():
        raise WeightsError("is not a file (expected a checkpoint file)", path)
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files that are not torch.save'd archives
            warnings.filterwarnings("ignore", message=".*pickle protocol.*", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        text = str(e)
        if any(marker in text for marker in _PICKLED_OBJECT_MARKERS):
            raise WeightsError(REFUSED_PICKLE, path) from None
        raise WeightsError("not a readable PyTorch checkpoint (corrupt file?)", path) from None
    except OSError as e:
        raise WeightsError(f"cannot read checkpoint: {e.strerror or e}", path) from None
    except Exception as e:  # torch raises RuntimeError/EOFError/KeyError/... on corrupt files
        kind = type(e).__name__
        raise WeightsError(
            f"not a readable PyTorch checkpoint (corrupt or truncated file?; {kind})", path
        ) from None
    if not isinstance(state, dict):
        raise WeightsError(f"expected a dict in the checkpoint, found {type(state).__name__}", path)
    return state


_PLAIN = (str, bytes, int, float, bool, complex, type(None), torch.Size, torch.dtype, torch.device)


def _check_plain(obj: Any, where: str) -> None:
    if isinstance(obj, (torch.Tensor, *_PLAIN)):
        return
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise TypeError(f"checkpoint key {where}[{k!r}] must be a str or int")
            _check_plain(v, f"{where}[{k!r}]")
        return
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
        return
    raise TypeError(
        f"checkpoint value {where} is a {type(obj).__module__}.{type(obj).__qualname__}; only "
        "tensors, numbers, strings and dicts/lists of them are saved (torch.from_numpy / "
        ".tolist() convert NumPy values)"
    )


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Atomically ``torch.save`` a dict of tensors and plain values (temp file + rename).

    Anything ``load_checkpoint`` would refuse (NumPy arrays, custom classes, modules) raises
    TypeError before anything is written; the parent folder is created if needed.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    _check_plain(state, "state")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        sink = _Sink(f)
        try:
            torch.save(state, cast(IO[bytes], sink))  # torch only calls write and flush
        except RuntimeError:
            if sink.error is not None:  # torch's writer hides a full disk behind its own text
                raise sink.error from None
            raise


class _Sink:
    """A binary file that remembers the OSError of a failed write (torch.save turns it into
    a RuntimeError like "unexpected pos 704 vs 598")."""

    def __init__(self, f) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()
