"""A trained feature extractor run over a video: each frame's features, logits and P.

Each video is decoded once, sequentially, in chunks (never a seek per frame); a
rolling buffer of frames yields each frame's N-frame stack, batched. A pairwise flow
generator (PairFlowNet) computes each consecutive pair's flow once and reuses it in
the N-1 stacks that hold it. The video edges repeat the first/last frame, so there is
exactly one row per frame, in order. Writing them to the outputs file, per video and per
animal, is :mod:`deg_core.infer.features`' (which re-exports every name here).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch

from deg_core.compute.autobatch import auto_batch
from deg_core.compute.layout import as_layout, memory_format, set_layout
from deg_core.config import DegConfig, to_dict
from deg_core.errors import DegError, ProjectError
from deg_core.models.feature import HiddenTwoStream
from deg_core.models.flow import PairFlowStream
from deg_core.models.fuse import fuse_conv_bn
from deg_core.models.network import feature_network
from deg_core.project.project import Project
from deg_core.project.runs import load_run
from deg_core.tracking.crop import open_frames
from deg_core.train.loop import pick_device
from deg_core.video.ahead import decode_ahead

__all__ = [
    "DATASETS",
    "REFERENCE",
    "FeaturePredictor",
    "InferenceOptions",
    "decode_ahead",
    "frame_runs",
    "stacks",
    "video_features",
]

DATASETS = ("spatial_features", "flow_features", "logits", "P")


@dataclass(frozen=True)
class InferenceOptions:
    """How feature inference computes; the defaults are the fast path.

    ``REFERENCE`` (no thread, float32, contiguous layout, one write per batch) is what
    the fast path is tested against: it must match within mixed-precision tolerance.
    """

    prefetch: int = 4  # batches decoded ahead in a background thread; 0 decodes inline
    channels_last: bool = True  # NHWC convolutions (faster with cuDNN and oneDNN)
    fuse: bool = True  # batch norms folded into the convolutions (a copy of the model)
    autocast: bool | None = None  # None: compute.precision (FeaturePredictor.autocast_dtype)
    compile: bool = False  # torch.compile the backbones (benchmarks/RESULTS.md: where it pays)
    write_frames: int = 2048  # frames gathered before one slice write per dataset


REFERENCE = InferenceOptions(
    prefetch=0, channels_last=False, fuse=False, autocast=False, write_frames=1
)


@dataclass
class FeaturePredictor:
    """A trained feature extractor ready for inference."""

    model: HiddenTwoStream
    run: Path
    n_rgb: int
    size: tuple[int, int]
    mean: torch.Tensor  # (1, 3, 1, 1)
    std: torch.Tensor
    thresholds: np.ndarray  # (K,)
    behaviors: list[str]
    augs: dict = field(default_factory=dict)  # the run's augs: its crop is inference's too
    fp16: bool = False  # compute.fp16: mixed precision on a GPU
    precision: str = "auto"  # compute.precision (autocast_dtype)
    exclusive: bool = False  # P is the softmax over background (logit 0) + behaviours
    _prepared: tuple = field(default=(), repr=False)  # (channels_last, fuse, compile) applied
    _running: HiddenTwoStream | None = field(default=None, repr=False)

    @classmethod
    def load(
        cls, project: Project, run: str = "latest", device: str = "cpu", fp16: bool | None = None
    ) -> FeaturePredictor:
        """``fp16`` None: the project's ``compute.fp16``; the precision is the project's
        ``compute.precision`` (an inference choice, not the run's)."""
        info = load_run(run, project.models_dir, "features", behaviors=project.behaviors)
        if info.upstream is None or info.n_rgb is None or info.normalization is None:
            raise ProjectError("not a feature-extractor run (no flow run recorded)", info.path)
        flow = load_run(info.upstream, project.models_dir)
        behaviors = info.behaviors or []
        model = feature_network(
            info.config,
            len(behaviors),
            n_rgb=info.n_rgb,
            flow_arch=str(flow.arch),
            arch=str(info.arch),
        )
        model.load_state_dict(info.checkpoint()["model"])
        model.eval().to(pick_device(device))
        if info.thresholds is None:
            raise ProjectError("the best checkpoint holds no fitted thresholds", info.path)
        compute = project.resolve_config().compute  # how to infer is today's choice
        predictor = cls.from_config(
            info.config,
            model,
            run=info.path,
            normalization=info.normalization,
            thresholds=info.thresholds,
            behaviors=behaviors,
            fp16=bool(compute.fp16) if fp16 is None else fp16,
        )
        predictor.precision = str(compute.precision)
        return predictor

    @classmethod
    def from_config(
        cls,
        cfg: DegConfig,
        model: HiddenTwoStream,
        *,
        run: Path,
        normalization: dict,
        thresholds: np.ndarray | list[float],
        behaviors: list[str],
        fp16: bool | None = None,
    ) -> FeaturePredictor:
        """A predictor of ``model`` as config ``cfg`` (a run's, or a preset's) reads and
        computes: its input size and crop (``augs``), precision (``compute.fp16`` unless
        ``fp16`` says) and exclusive P. ``normalization``: {"mean": 3, "std": 3}."""
        h, w = cfg.augs.resize
        return cls(
            model=model,
            run=run,
            n_rgb=int(model.num_frames),
            size=(int(h), int(w)),
            mean=torch.tensor(normalization["mean"], dtype=torch.float32).view(1, 3, 1, 1),
            std=torch.tensor(normalization["std"], dtype=torch.float32).view(1, 3, 1, 1),
            thresholds=np.asarray(thresholds, dtype=np.float32),
            behaviors=list(behaviors),
            augs=to_dict(cfg.augs),
            fp16=bool(cfg.compute.fp16) if fp16 is None else fp16,
            precision=str(cfg.compute.precision),
            exclusive=bool(cfg.project.exclusive),
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepared(self, opts: InferenceOptions) -> HiddenTwoStream:
        """The model as ``opts`` runs it: in its memory layout, with the batch norms folded
        into the convolutions and the three networks compiled if asked (both on a copy:
        ``self.model`` keeps its trained modules and state-dict keys)."""
        want = (opts.channels_last, opts.fuse, opts.compile)
        if self._prepared != want or self._running is None:
            model = self.model
            if opts.fuse or opts.compile:
                model = copy.deepcopy(self.model).eval()
                if opts.fuse:
                    fuse_conv_bn(model)
                if opts.compile:  # each network: the pairwise path calls them one by one
                    for name in ("flow_generator", "spatial", "flow"):
                        setattr(model, name, torch.compile(getattr(model, name)))
            set_layout(model, opts.channels_last)
            self._running, self._prepared = model, want
        return self._running

    def auto_batch(self, opts: InferenceOptions = InferenceOptions(), cap: int = 512) -> int:
        """The largest inference batch (a power of two <= cap) that fits the GPU; 16 on CPU."""
        device = self.device
        h, w = self.size

        @torch.no_grad()
        def step(b: int) -> None:
            model, amp = self.prepared(opts), self.autocast_dtype(opts)
            x = torch.randn(b, 3 * self.n_rgb, h, w, device=device)
            x = as_layout(x, opts.channels_last)
            with torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext():
                model(x)

        # the run names the architecture; the parameter count tells presets apart without one
        n_params = sum(p.numel() for p in self.model.parameters())
        key = ("infer", self.run.name, n_params, self.n_rgb, self.size, self.autocast_dtype(opts))
        return auto_batch(
            "auto", device, cpu_default=16, gpu_default=64, step=step, key=key, cap=cap
        )

    def autocast_dtype(self, opts: InferenceOptions) -> torch.dtype | None:
        """The dtype inference autocasts to; None: float32.

        ``opts.autocast`` False: float32; True: reduced precision whatever the settings (bf16,
        or fp16 on a GPU without bf16). None follows ``compute.precision``: ``auto`` is bf16
        on CPUs with native bf16 (AVX512-BF16/AMX: ~2x measured on the fast preset), float32
        on other CPUs (there bf16 is emulated and slower), and on a GPU ``compute.fp16``;
        ``bfloat16``/``float16`` always (a CPU emulates what it lacks); ``float32`` never.
        """
        cuda = self.device.type == "cuda"
        reduced = torch.float16 if cuda and not torch.cuda.is_bf16_supported() else torch.bfloat16
        if opts.autocast is not None:
            return reduced if opts.autocast else None
        if self.precision == "float32":
            return None
        if self.precision == "bfloat16":
            return torch.bfloat16
        if self.precision == "float16":
            return torch.float16
        on = (cuda and self.fp16) or (not cuda and _cpu_has_bf16())
        return reduced if on else None


def _original(net: torch.nn.Module) -> torch.nn.Module:
    """A compiled network's module (PairFlowStream calls its encode/decode, not forward)."""
    return cast(torch.nn.Module, getattr(net, "_orig_mod", net))


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def frame_runs(frames: Iterator[np.ndarray], n_frames: int, n_rgb: int, batch: int):
    """Sequential (t, H, W, 3) chunks -> (first centre, (B + N - 1, H, W, 3)) runs of frames.

    A run holds the frames of B consecutive centres' N-frame stacks: centre ``t``'s stack is
    frames t-N//2 .. t+N//2 with the video's ends repeated. Each run starts N - 1 frames before
    the previous one ended; every centre appears exactly once, in order.
    """
    half = n_rgb // 2
    buf: np.ndarray | None = None
    seen, start = 0, 0  # frames read; first centre not yet emitted
    for chunk in frames:
        if buf is None:  # pad the front with copies of the first frame
            buf = np.repeat(chunk[:1], half, axis=0)
        buf = np.concatenate([buf, chunk])
        seen += len(chunk)
        if seen >= n_frames:  # pad the back with copies of the last frame
            buf = np.concatenate([buf, np.repeat(buf[-1:], n_rgb - 1 - half, axis=0)])
        while True:
            ready = len(buf) - n_rgb + 1  # complete stacks in the buffer
            if ready <= 0 or (ready < batch and seen < n_frames):
                break
            take = min(batch, ready)
            yield start, buf[: take + n_rgb - 1]
            start += take
            buf = buf[take:]
    if start != n_frames:
        raise DegError(f"decoded {start} frames, expected {n_frames}")


def stacks(frames: Iterator[np.ndarray], n_frames: int, n_rgb: int, batch: int):
    """Sequential (t, H, W, 3) chunks -> (first centre, (B, N, H, W, 3)) batches of stacks
    (:func:`frame_runs`, each run cut into its B windows)."""
    for start, run in frame_runs(frames, n_frames, n_rgb, batch):
        windows = np.lib.stride_tricks.sliding_window_view(run, n_rgb, 0)
        yield start, np.ascontiguousarray(np.moveaxis(windows, -1, 1))


def _stack_batches(
    fm: FeaturePredictor,
    video: Path,
    n_frames: int,
    batch: int,
    pin: bool,
    boxes=None,
    runs: bool = False,
):
    """(first centre, uint8 tensor) batches, decoded sequentially: (B, N, H, W, 3) stacks, or
    with ``runs`` the (B + N - 1, H, W, 3) frames they are cut from (:func:`frame_runs`).

    ``boxes``: (T, 4) crop boxes (deg_core.tracking.crop) or None for whole frames.
    """
    batches = frame_runs if runs else stacks
    with open_frames(video, boxes) as reader:
        chunks = (c for _, c in reader.iter_chunks(chunk=max(batch, 32), size=fm.size))
        for start, array in batches(chunks, n_frames, fm.n_rgb, batch):
            # views of the rolling buffer are safe (it is never written in place); a
            # one-stack batch can come back read-only
            x = torch.from_numpy(array if array.flags.writeable else array.copy())
            yield start, (x.pin_memory() if pin else x)  # pinned: the copy overlaps compute


@torch.no_grad()
def video_features(
    fm: FeaturePredictor,
    video: Path,
    n_frames: int,
    batch: int = 16,
    opts: InferenceOptions = InferenceOptions(),
    boxes: np.ndarray | None = None,
):
    """Yield (first frame, dict of (B, D) float32 numpy arrays for that batch of frames).

    ``boxes``: (T, 4) per-frame crop boxes when the run crops (see deg_core.tracking.crop).

    uint8 stacks go to the device (4x fewer bytes than float; pinned and non-blocking
    on CUDA) and are normalised there; ``opts`` picks decode-ahead, layout and autocast.
    """
    device = fm.device
    cuda = device.type == "cuda"
    model = fm.prepared(opts)  # folded, compiled, in its layout: every path runs this one
    amp = fm.autocast_dtype(opts)
    # (x/255 - mean)/std as one multiply-add on the device
    scale = (1.0 / (255.0 * fm.std)).to(device)  # (1, 3, 1, 1)
    shift = (-fm.mean / fm.std).to(device)
    layout = memory_format(opts.channels_last)
    # a pairwise generator computes each frame pair once: runs of frames, not stacks
    pair_flows = None
    if getattr(fm.model.flow_generator, "pairwise", False) and not fm.model.is_3d:
        pair_flows = PairFlowStream(_original(model.flow_generator), fm.n_rgb)
    batches: Iterator = _stack_batches(
        fm, video, n_frames, batch, pin=cuda, boxes=boxes, runs=pair_flows is not None
    )
    if opts.prefetch > 0:
        batches = decode_ahead(batches, opts.prefetch)
    k = len(fm.behaviors)
    half = fm.n_rgb // 2
    for start, frames in batches:
        x = frames.to(device, non_blocking=cuda)  # (B, N, H, W, 3) or (B+N-1, H, W, 3) uint8
        x = torch.addcmul(shift, x.movedim(-1, -3).float(), scale)  # (..., 3, H, W)
        ac = torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext()
        with ac:
            if pair_flows is None:
                out = model(x.flatten(1, 2).contiguous(memory_format=layout))  # (B, 3N, H, W)
            else:
                x = x.contiguous(memory_format=layout)
                flows = pair_flows(x)  # (B, 2(N-1), h, w), each pair computed once
                out = model.forward_streams(x[half : half + flows.shape[0]], flows)
        logits = out["logits"].float()
        if fm.exclusive:  # background's logit is 0 (deg_core.evaluation.decisions)
            probs = torch.cat([torch.zeros_like(logits[:, :1]), logits], 1).softmax(1)[:, 1:]
        else:
            probs = logits.sigmoid()
        # one device->host copy per batch: spatial | flow | logits | P
        both = (
            torch.cat(
                [
                    out["spatial_features"].float(),
                    out["flow_features"].float(),
                    logits,
                    probs,
                ],
                dim=1,
            )
            .cpu()
            .numpy()
        )
        d_s = out["spatial_features"].shape[1]
        d_f = out["flow_features"].shape[1]
        cuts = np.cumsum([d_s, d_f, k])
        parts = np.split(both, cuts, axis=1)
        yield start, dict(zip(DATASETS, parts, strict=True))
