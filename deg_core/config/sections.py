"""The typed config sections (one dataclass per YAML section) and :class:`DegConfig`.

Each field is declared with :func:`deg_core.config.fields._f`: its default, a one-line
meaning and the values it accepts. ``deg_ignored`` lists the keys DeepEthogram writes that
deg derives instead; ``retired`` the keys deg once had, with where to go instead. The
project's own section and the subject checks live in :mod:`deg_core.config.project_sections`
(re-exported here); this module holds the stage sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from deg_core.config.fields import (
    DEVICES,
    DROPOUT,
    LABEL_SMOOTHING,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Range,
    _f,
    device_problem,
)
from deg_core.config.project_sections import (
    SEXES,
    SUBJECT_FIELDS,
    ProjectSection,
    SubjectSection,
    age_problem,
    sex_problem,
    species_problem,
    subject_id_problem,
    subject_problem,
)

__all__ = [
    "SEXES",
    "SUBJECT_FIELDS",
    "AugsSection",
    "ComputeSection",
    "DegConfig",
    "FeatureExtractorSection",
    "FlowGeneratorSection",
    "PretrainSection",
    "ProjectSection",
    "SequenceSection",
    "SplitSection",
    "SubjectSection",
    "TrainSection",
    "age_problem",
    "sex_problem",
    "species_problem",
    "subject_id_problem",
    "subject_problem",
]


def _split_problem(value: Any, key: str) -> str | None:
    if isinstance(value, list) and sum(value) <= 0:
        return f"{key} must have a fraction > 0, got {value!r}"
    return None


@dataclass
class SplitSection:
    """How videos are assigned to train/val/test (per video, never per frame)."""

    train_val_test: list[float] = _f(
        [0.8, 0.2, 0.0],
        "fractions for randomly assigned videos",
        Range(ge=0, le=1, length=3, check=_split_problem),
    )
    seed: int | None = _f(None, "seed for split assignment (None: random)")
    reload: bool = _f(True, "keep existing assignments (DEG compatibility; deg always does)")
    file: str | None = _f(None, "another split.yaml to copy assignments from")


@dataclass
class AugsSection:
    """Input size and augmentations (identical across a clip's frames)."""

    resize: list[int] = _f(
        [224, 224], "network input height, width; multiples of 32", Range(ge=32, length=2)
    )
    LR: float = _f(0.5, "probability of a left-right flip", PROBABILITY)
    UD: float = _f(0.0, "probability of an up-down flip", PROBABILITY)
    degrees: float = _f(10.0, "maximum rotation in degrees", Range(ge=0, le=180))
    brightness: float = _f(0.25, "colour jitter: brightness", NON_NEGATIVE)
    contrast: float = _f(0.1, "colour jitter: contrast", NON_NEGATIVE)
    saturation: float = _f(0.1, "colour jitter: saturation", NON_NEGATIVE)
    hue: float = _f(
        0.1, "colour jitter: hue, in turns of the chroma wheel (data/color.py)", Range(ge=0, le=0.5)
    )
    grayscale: float = _f(0.5, "probability of converting a clip to grayscale", PROBABILITY)
    crop_size: list[int] | None = _f(
        None, "random crop (height, width) before resize, or None", Range(ge=1, length=2)
    )
    pad: list[int] | None = _f(None, "padding before cropping, or None", NON_NEGATIVE)
    random_resize: bool = _f(
        False, "random scale (0.85-1.15) and shift (up to 10 %) jitter, one draw per clip"
    )
    crop: Literal["full", "animal"] = _f(
        "full",
        "full: the whole frame is resized; animal: a fixed-size square that follows the "
        "animal (tracked per video without labels, cached in DATA/<key>/<key>_track.npz)",
    )
    crop_scale: float = _f(
        1.5,
        "animal crop: window side = this x the animal's typical length (90th percentile)",
        POSITIVE,
    )

    # deg computes normalisation from each video's record.yaml stats instead of caching it here.
    deg_ignored: ClassVar[frozenset[str]] = frozenset({"normalization"})


@dataclass
class ComputeSection:
    """Where and how fast to compute."""

    device: str = _f("auto", DEVICES, Range(check=device_problem))
    batch_size: int | Literal["auto"] = _f(
        "auto", "batch size, or auto to fit the device", POSITIVE_INT
    )
    num_workers: int | Literal["auto"] = _f("auto", "data-loading worker processes", NON_NEGATIVE)
    fp16: bool = _f(False, "mixed precision on GPU")
    precision: Literal["auto", "float32", "bfloat16", "float16"] = _f(
        "auto",
        "feature inference: auto = bfloat16 on CPUs with native bf16 (AVX512-BF16/AMX), "
        "float32 on other CPUs, compute.fp16 on GPUs; or always float32/bfloat16/float16",
    )
    frame_cache_mb: float = _f(
        1024.0,
        "per data worker: training videos whose resized frames fit are held in memory",
        NON_NEGATIVE,
    )

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"distributed", "gpu_id", "dali", "min_batch_size", "max_batch_size", "metrics_workers"}
    )


@dataclass
class TrainSection:
    """Optimisation defaults shared by the three trainers."""

    patience: int = _f(5, "epochs without validation improvement before the LR drops", NON_NEGATIVE)
    reduction_factor: float = _f(0.1, "LR multiplier on plateau", Range(gt=0, lt=1))
    min_lr: float = _f(5e-7, "stop when the LR falls below this", NON_NEGATIVE)
    loss_weight_exp: float = _f(
        0.25, "beta in pos_weight = (neg/pos)^beta (DEG paper: 0.25)", NON_NEGATIVE
    )
    # 1.0: on the rat folds +0.01 test macro F1 on average over six comparisons (-0.02 to
    # +0.03: within noise; benchmarks/RESULTS.md); it guards against the few-bouts cliff
    threshold_smoothing: float = _f(
        1.0,
        "thresholds maximise validation F1 averaged over a threshold error of this many "
        "logits (robust to few validation bouts; 0: DEG's plain maximum)",
        NON_NEGATIVE,
    )

    # settings deg once had and no stage reads: refused with where to go instead
    retired: ClassVar[dict[str, str]] = {
        "lr": "each stage has its own: flow_generator.lr, feature_extractor.lr, sequence.lr",
        "num_epochs": "each stage has its own: flow_generator.num_epochs, "
        "feature_extractor.num_epochs, sequence.num_epochs",
    }
    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {
            "scheduler",
            "steps_per_epoch",
            "stopping_type",
            "milestones",
            "weight_loss",
            "early_stopping_begins",
            "viz",
        }
    )


@dataclass
class FlowGeneratorSection:
    """Stage 1: the self-supervised optic-flow generator (``deg train flow``)."""

    arch: str = _f(
        "TinyMotionNet",
        "TinyMotionNet, MotionNet, TinyMotionNet3D or PairFlowNet (pairwise: each frame pair's "
        "flow computed once; the lite preset)",
    )
    n_rgb: int = _f(
        11, "frames stacked per input (N); the generator outputs N-1 flows", Range(ge=2)
    )
    weights: str = _f(
        "auto",
        "auto (models/pretrained if present, else scratch), scratch, pretrained, or a .pt path",
    )
    num_epochs: int = _f(10, "epochs", POSITIVE_INT)
    steps_per_epoch: int = _f(1000, "training batches per epoch", POSITIVE_INT)
    val_steps: int = _f(100, "validation batches per epoch", POSITIVE_INT)
    batch_size: int | Literal["auto"] = _f("auto", "clips per batch, or auto", POSITIVE_INT)
    lr: float = _f(1e-4, "Adam learning rate", POSITIVE)
    photo_alpha: float = _f(0.4, "Charbonnier exponent of the photometric loss", POSITIVE)
    smooth_alpha: float = _f(0.3, "Charbonnier exponent of the smoothness loss", POSITIVE)
    smooth_weights: list[float] = _f(
        [0.01, 0.02, 0.04], "smoothness weight per scale, fine->coarse", NON_NEGATIVE
    )
    ssim_weight: float = _f(1.0, "weight of (1 - SSIM) in the photometric loss", NON_NEGATIVE)

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"type", "flow_loss", "flow_max", "input_images", "flow_sparsity"}
        | {"smooth_weight_multiplier", "sparsity_weight", "loss", "max"}
    )


@dataclass
class FeatureExtractorSection:
    """Stage 2: the hidden two-stream feature extractor (``deg train features``)."""

    arch: str = _f("resnet18", "resnet18, resnet50 or resnet3d_34 (both streams)")
    rgb_stride: int = _f(
        1,
        "the spatial stream sees the centre frame average-pooled by this factor "
        "(1: full resolution, DEG; 2: half, 1/4 of the arithmetic; 2-D archs)",
        Range(ge=1, le=8),
    )
    fusion: Literal["average", "concatenate"] = _f("average", "how the two streams combine")
    flow_weight: float = _f(1.5, "flow stream's weight in average fusion (DEG: 1.5)", NON_NEGATIVE)
    dropout_p: float = _f(0.25, "dropout on the 512-d features before each head", DROPOUT)
    weights: str = _f(
        "auto",
        "auto (pretrained if present, else this project's latest pretrain run on the same "
        "flow run and arch, else ImageNet from the torch cache, else scratch), scratch, "
        "imagenet, pretrained, selfsup (the latest pretrain run: `deg train pretrain`), "
        "or a .pt path",
    )
    num_epochs: int = _f(20, "epochs", POSITIVE_INT)
    steps_per_epoch: int = _f(1000, "training batches per epoch", POSITIVE_INT)
    val_steps: int = _f(200, "validation batches per epoch", POSITIVE_INT)
    batch_size: int | Literal["auto"] = _f("auto", "clips per batch, or auto", POSITIVE_INT)
    lr: float = _f(1e-4, "Adam learning rate", POSITIVE)
    weight_decay: float = _f(0.0, "Adam weight decay", NON_NEGATIVE)
    focal_gamma: float = _f(0.0, "focal-loss gamma (0: plain BCE; DEG option: 1)", NON_NEGATIVE)
    label_smoothing: float = _f(0.0, "label smoothing epsilon (e.g. 0.05)", LABEL_SMOOTHING)
    fit_on: Literal["train", "train+val"] = _f(
        "train",
        "videos the feature extractor trains on (train+val: the val videos too; their "
        "validation loss is then in sample, so the best epoch is about the last)",
    )
    flow_cache: bool = _f(
        True,
        "with a frozen pairwise flow generator (lite), each video's flows are computed once on "
        "unaugmented frames and augmented with the centre frame, not recomputed every step "
        "(when they fit compute.frame_cache_mb); false: every clip's flows each step",
    )

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"sampler", "final_bn", "sampling_ratio", "final_activation", "n_flows", "n_rgb"}
        | {"curriculum", "inputs"}
    )


@dataclass
class PretrainSection:
    """Self-supervised pretraining of the feature extractor on every frame of every video,
    labelled or not (``deg train pretrain``); its run starts the feature stage
    (``feature_extractor.weights``: auto or selfsup). The networks are the feature stage's
    (``feature_extractor.arch``, ``rgb_stride``) on its flow run's frozen flows."""

    num_epochs: int = _f(4, "epochs", POSITIVE_INT)
    steps_per_epoch: int = _f(30, "training batches per epoch", POSITIVE_INT)
    val_steps: int = _f(4, "validation batches per epoch (fixed clips and draws)", POSITIVE_INT)
    # the variance and covariance terms are statistics over the batch: 2 clips at least
    batch_size: int | Literal["auto"] = _f(
        "auto", "clips per batch (each seen twice), or auto (16 on a CPU)", Range(ge=2)
    )
    lr: float = _f(1e-3, "Adam learning rate", POSITIVE)
    weight_decay: float = _f(0.0, "Adam weight decay", NON_NEGATIVE)
    max_shift: int = _f(
        4,
        "the second view's clip is centred up to this many frames away from the first "
        "(0: the same clip, differently augmented)",
        NON_NEGATIVE,
    )
    invariance_weight: float = _f(
        25.0, "VICReg: weight of the mean squared distance between the two views", NON_NEGATIVE
    )
    variance_weight: float = _f(
        25.0,
        "VICReg: weight of the hinge keeping each embedding dimension's std >= 1",
        NON_NEGATIVE,
    )
    covariance_weight: float = _f(
        1.0, "VICReg: weight of the embedding dimensions' squared covariances", NON_NEGATIVE
    )


@dataclass
class SequenceSection:
    """Stage 3: the sequence model over per-frame features (``deg train sequence``)."""

    # tcn by measured validation F1 (benchmarks/RESULTS.md, "Accuracy ablation"): 0.72 vs 0.65
    # over 3 seeds, and ~9x faster to train on a CPU
    arch: str = _f("tcn", "tcn (dilated temporal conv net) or tgmj (DEG's Gaussian mixture)")
    sequence_length: int = _f(180, "frames per training window", POSITIVE_INT)
    filter_length: int = _f(15, "TGM kernel length (frames)", POSITIVE_INT)
    n_filters: int = _f(8, "TGM kernels per layer", POSITIVE_INT)
    num_layers: int | None = _f(None, "TGM layers / TCN blocks (None: tgmj 3, tcn 6)", POSITIVE_INT)
    head_hidden: int = _f(128, "tgmj: hidden width of each head (DEG's num_features)", POSITIVE_INT)
    hidden_size: int = _f(128, "tcn: channels", POSITIVE_INT)
    dropout_p: float = _f(0.5, "dropout before the output layers", DROPOUT)
    input_dropout: float = _f(0.5, "dropout on the input features", DROPOUT)
    num_epochs: int = _f(30, "epochs", POSITIVE_INT)
    steps_per_epoch: int = _f(100, "training batches per epoch", POSITIVE_INT)
    batch_size: int | Literal["auto"] = _f("auto", "windows per batch, or auto", POSITIVE_INT)
    lr: float = _f(1e-4, "Adam learning rate", POSITIVE)
    weight_decay: float = _f(0.0, "Adam weight decay", NON_NEGATIVE)
    # 0.5 by measurement: the demo's short behaviour went from F1 0 to > 0, the rat folds
    # were unchanged (benchmarks/RESULTS.md)
    min_bout_fraction: float = _f(
        0.5,
        "predicted bouts shorter than this fraction of the shortest labelled bout are removed "
        "(1: DeepEthogram's rule)",
        PROBABILITY,
    )
    track_features: bool = _f(
        False,
        "append the animal track (position, speed, extent, motion; z-scored per video) "
        "to the per-frame features",
    )
    track_position: bool = _f(
        True,
        "track_features: include where the animal is in the frame (false: only speed, extent, "
        "shape and motion, which do not depend on the arena's layout)",
    )
    social_features: bool = _f(
        True,
        "track_features on videos of several animals: add each animal's relation to the "
        "nearest other one (distance in body sizes, approach speed, bearing); one-animal "
        "projects are unchanged",
    )
    standardise_inputs: bool = _f(
        False,
        "z-score every input feature over its video before the sequence model sees it "
        "(what a video's lighting and box add to all its frames cancels)",
    )
    focal_gamma: float = _f(0.0, "focal-loss gamma (0: plain BCE)", NON_NEGATIVE)
    label_smoothing: float = _f(0.0, "label smoothing epsilon", LABEL_SMOOTHING)
    # val by measurement (benchmarks/RESULTS.md, "Decisions on a new video"): pooled with the
    # train videos, whose features the feature extractor trained on, thresholds travelled worse
    decisions: Literal["out_of_fold", "val"] = _f(
        "val",
        "fit thresholds (or arg-max offsets) on predictions every labelled video gets from a "
        "model that did not train on it, pooled (out_of_fold), or on the val videos only (val: "
        "DeepEthogram's way)",
    )
    # false by measurement (benchmarks/RESULTS.md, "Decisions on a new video"): offsets
    # fitted on two rat videos cost 0.14 macro F1 on the third; the softmax's arg-max travels
    argmax_offsets: bool = _f(
        False,
        "exclusive projects: fit per-behaviour offsets of the arg-max on the decisions' "
        "videos (false: the plain arg-max of the softmax)",
    )
    # auto by measurement (benchmarks/RESULTS.md, "Decisions on a new video"): the exclusive
    # arg-max gained on both rat folds measured (+0.02, +0.20), val thresholds lost (-0.12)
    normalise_scores: Literal["auto", "always", "never"] = _f(
        "auto",
        "standardise each behaviour's logits per video before deciding (scores shift between "
        "videos; the ranking within a video travels); auto: for an exclusive project's "
        "arg-max, not for thresholds",
    )
    self_training: bool = _f(
        False,
        "a first model labels the confident frames of the project's unlabelled videos "
        "(pseudo-labels) and the final model trains on them too",
    )
    pseudo_confidence: float = _f(
        0.9, "self_training: probability a pseudo-label needs", Range(ge=0.5, le=1)
    )
    # auto by measurement (benchmarks/RESULTS.md, "Training on the val video too")
    fit_on: Literal["auto", "train", "train+val"] = _f(
        "auto",
        "videos the final model trains on (train+val needs decisions that fit nothing on the "
        "val videos: out_of_fold, or an exclusive project's plain arg-max; the best epoch is "
        "then about the last); auto: train+val where that holds, else train",
    )

    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"latent_name", "output_name", "num_features", "nonoverlapping", "tgm_reduction"}
        | {"c_in", "c_out", "soft_attn", "bidirectional", "rnn_style"}
        | {"hidden_dropout", "weights", "nonlinear_classification", "final_bn", "input_type"}
    )


@dataclass
class DegConfig:
    """The whole resolved configuration of a project."""

    project: ProjectSection = field(default_factory=ProjectSection)
    split: SplitSection = field(default_factory=SplitSection)
    augs: AugsSection = field(default_factory=AugsSection)
    compute: ComputeSection = field(default_factory=ComputeSection)
    train: TrainSection = field(default_factory=TrainSection)
    flow_generator: FlowGeneratorSection = field(default_factory=FlowGeneratorSection)
    feature_extractor: FeatureExtractorSection = field(default_factory=FeatureExtractorSection)
    pretrain: PretrainSection = field(default_factory=PretrainSection)
    sequence: SequenceSection = field(default_factory=SequenceSection)

    # Top-level keys DEG writes that deg does not use.
    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"notes", "log", "reload", "run", "preset", "cmap", "label_view_width"}
        | {"vertical_arrangement"}
    )
