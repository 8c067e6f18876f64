"""Self-supervised pretraining of the feature extractor (``deg train pretrain``).

Labels cover a few frames of a few videos; the videos themselves are all there. This
stage trains the network the feature stage builds — the same ``feature_extractor.arch``
and ``rgb_stride``, on the same animal crop, input size and normalisation, with the
same frozen flow generator from a flow run (``latest`` by default) — on clips centred on
EVERY frame of EVERY video of the project (all splits, labelled or not), with VICReg
(:mod:`deg_core.train.vicreg`) on two views of each clip (:class:`deg_core.data.views.TwoViews`:
two independent augmentation draws, the second up to ``pretrain.max_shift`` frames away).

Both streams' features, ``[spatial_features ‖ flow_features]`` (B, 1024) for resnet18, go
through a projector (1024 -> 512 -> 512, BN/ReLU) to the embeddings the loss compares.
Validation is the same loss (with batch statistics, as training computes it) on a fixed
set of clips under fixed draws, so ``best.pt`` is the epoch with the lowest validation
loss, as in every stage. Its ``"model"`` is the
HiddenTwoStream state dict, keys as the feature stage saves its model; the projector is
kept in ``extra["projector"]`` (to resume) and the feature stage never loads it. The
feature stage starts from the run with ``feature_extractor.weights`` ``selfsup``, or
``auto`` when no DeepEthogram weights are present and the run used the same flow run and
arch (:mod:`deg_core.train.pretrained`); its heads keep their fresh initialisation.

The run records its flow run, normalisation, n_rgb and videos like a feature run, but
no class names: it never saw a label, so a change of behaviours does not make it stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deg_core.compute import autobatch
from deg_core.compute.layout import as_layout, nhwc_if_2d
from deg_core.config import DegConfig
from deg_core.data.clips import ClipAugment, ClipDataset, all_frames, evenly_spaced
from deg_core.data.views import TwoViews
from deg_core.errors import ProjectError
from deg_core.models.feature import HiddenTwoStream
from deg_core.models.weights import load_checkpoint
from deg_core.project.project import Project
from deg_core.project.runs import LAST
from deg_core.train import common
from deg_core.train.features import load_flow_run
from deg_core.train.loop import Callback, seed_everything
from deg_core.train.pretrained import SELFSUP, init_feature_extractor
from deg_core.train.vicreg import Projector, VICRegWeights, vicreg_loss

STAGE = "pretrain"
PROJECTOR = "projector"  # its key in the checkpoints' extra


class SelfSupervised(nn.Module):
    """A :class:`HiddenTwoStream` encoder and the VICReg projector over its two streams.

    ``forward(x)``: x (B, 3N, H, W) normalised clips -> (B, P) embeddings of
    ``[spatial_features ‖ flow_features]``. Its state dict is the encoder's alone (the
    checkpoints' ``"model"`` loads into the feature stage's model); the projector's is
    saved beside it by :func:`train_pretrain`.
    """

    def __init__(self, encoder: HiddenTwoStream, projector: Projector):
        super().__init__()
        self.encoder = encoder
        self.projector = projector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder(x)
        return self.projector(torch.cat([out["spatial_features"], out["flow_features"]], dim=1))

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.encoder.state_dict(*args, **kwargs)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        return self.encoder.load_state_dict(state_dict, strict=strict, assign=assign)


def feature_width(encoder: HiddenTwoStream) -> int:
    """Width of ``[spatial_features ‖ flow_features]`` (1024 for resnet18)."""
    return int(getattr(encoder.spatial, "out_features", 512)) + int(
        getattr(encoder.flow, "out_features", 512)
    )


def train_pretrain(
    project: Project,
    cfg: DegConfig | None = None,
    *,
    flow_run: str = "latest",
    device: str = "auto",
    resume: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    seed: int | None = None,
) -> Path:
    """Train (or resume) a pretrain run; returns the run folder.

    ``cfg`` None: the project's config, or when resuming the run's own settings (a given
    ``cfg`` may change only resumable ones; :func:`deg_core.train.common.stage_config`).
    A resumed run keeps its flow run (``latest`` means it) and ``seed`` (None: 0).
    """
    cfg, resumed = common.stage_config(project, STAGE, cfg, resume)
    flow_run = common.recorded(resumed, "flow_run", flow_run, unset="latest")
    seed = common.recorded_seed(resumed, seed)
    pcfg, ecfg = cfg.pretrain, cfg.feature_extractor
    dev = common.resolve_device(device, cfg)
    seed_everything(seed)
    keys = project.video_keys()
    if not keys:
        raise ProjectError("no video in this project to pretrain on: add videos first")
    items = common.video_items(project, keys, with_labels=False, augs=cfg.augs)
    flow_gen, flow = load_flow_run(project, flow_run)
    n_rgb = flow.n_rgb
    assert n_rgb is not None  # load_flow_run refuses a run without it
    norm = flow.normalization or project.normalization()
    size = common.input_size(cfg)

    # the feature stage's network; its behaviour heads exist (same keys) but go untrained
    encoder = HiddenTwoStream.build(
        ecfg.arch, flow_gen, max(len(project.behaviors), 1), n_rgb, rgb_stride=ecfg.rgb_stride
    )
    # auto never starts from an earlier pretrain run (each run is its own training from
    # DEG/ImageNet/scratch); selfsup asks to continue the latest one
    weights = init_feature_extractor(
        encoder,
        ecfg.arch,
        ecfg.weights,
        project.models_dir / "pretrained",
        runs_dir=project.models_dir if ecfg.weights == SELFSUP else None,
        flow_run=flow.name,
    )
    projector = Projector(feature_width(encoder))
    net = SelfSupervised(encoder, projector).to(dev)
    nhwc = nhwc_if_2d(net)  # NHWC convolutions: deg_core.compute.layout
    terms_weights = VICRegWeights.from_config(pcfg)

    def loss_of(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """x: (2B, 3N, H, W), the first views then the second ones."""
        z1, z2 = m(as_layout(x, nhwc)).chunk(2)
        return vicreg_loss(z1, z2, terms_weights)

    def example(b: int) -> tuple[torch.Tensor, torch.Tensor]:  # b clips: 2b network inputs
        return torch.randn(2 * b, 3 * n_rgb, *size, device=dev), torch.zeros(0, device=dev)

    # the probe saves and restores what it is given: the encoder AND the projector
    probe = autobatch.training_probe(
        nn.ModuleList([encoder, projector]), example, lambda _m, x, _y: loss_of(net, x)[0]
    )
    batch = (resumed and resumed.batch) or common.batch_size(
        pcfg.batch_size, dev, 16, 64, probe=probe, key=(STAGE, ecfg.arch, size, n_rgb)
    )
    workers = common.num_workers(cfg.compute.num_workers)
    run = common.start_run(
        project,
        STAGE,
        ecfg.arch,
        cfg,
        resume,
        {
            "flow_run": flow.name,
            "weights": weights,
            "normalization": norm,
            "n_rgb": n_rgb,
            "seed": seed,
            "batch_size": batch,
            "videos": keys,
        },
    )
    if resume is not None and (run / LAST).is_file():  # the Trainer restores the encoder
        projector.load_state_dict(load_checkpoint(run / LAST)["extra"][PROJECTOR])

    def make_set(samples: np.ndarray, draws: int | None) -> TwoViews:
        clips = ClipDataset(
            items,
            samples,
            n_rgb,
            size,
            norm["mean"],
            norm["std"],
            ClipAugment.from_config(cfg.augs),
            cache_mb=cfg.compute.frame_cache_mb,
        )
        return TwoViews(clips, pcfg.max_shift, seed=draws)

    samples = all_frames(items)  # every frame of every video is a centre
    # whole batches only: the variance and covariance terms need >= 2 clips
    n_val = min(len(samples), pcfg.val_steps * batch)
    n_val = n_val - n_val % batch if n_val >= batch else n_val
    train_set = make_set(samples, None)
    val_set = make_set(evenly_spaced(samples, n_val), seed)  # fixed clips and draws
    val_loader = common.fixed_loader(val_set, batch, workers)

    def both_views(b: dict[str, Any]) -> torch.Tensor:
        return torch.cat([b["view1"], b["view2"]]).to(dev, non_blocking=True)

    def step(m: nn.Module, b: dict[str, Any]) -> tuple[torch.Tensor, int]:
        loss, _ = loss_of(m, both_views(b))
        return loss, len(b["view1"])

    def validate(m: nn.Module, epoch: int) -> dict[str, Any]:
        losses: list[float] = []
        terms: dict[str, list[float]] = {}
        # the loss as training computes it, with batch statistics: BatchNorm's running ones
        # lag the weights for the first tens of steps, and through the covariance term that
        # lag alone (x1000 after 6 steps of the tests' run) keeps best.pt at the first
        # epoch. The running statistics are put back: validating changes nothing.
        saved = [b.detach().clone() for b in m.buffers()]
        m.train()
        try:
            for b in val_loader:
                if len(b["view1"]) < 2:  # a project of one frame
                    continue
                loss, parts = loss_of(m, both_views(b))
                losses.append(float(loss))
                for k, v in parts.items():
                    terms.setdefault(k, []).append(v)
        finally:
            for buf, value in zip(m.buffers(), saved, strict=True):
                buf.copy_(value)
            m.eval()
        return {
            "loss": common.mean_or_nan(losses),
            **{k: common.mean_or_nan(v) for k, v in terms.items()},
        }

    def extra() -> dict[str, Any]:
        return {PROJECTOR: projector.state_dict()}

    return common.fit(
        run,
        net,
        lr=pcfg.lr,
        weight_decay=pcfg.weight_decay,
        cfg=cfg,
        step_fn=step,
        validate_fn=validate,
        loader_fn=common.epoch_loader(train_set, batch, pcfg.steps_per_epoch, seed, workers),
        num_epochs=pcfg.num_epochs,
        steps_per_epoch=pcfg.steps_per_epoch,
        callbacks=callbacks,
        progress=progress,
        extra_state=extra,
        find_unused_parameters=True,  # the behaviour heads get no gradient here
    )
