"""The typed config sections (one dataclass per YAML section) and :class:`DegConfig`.

Each field is declared with :func:`deg_core.config.fields._f`: its default, a one-line
meaning and the values it accepts. ``deg_ignored`` lists the keys DeepEthogram writes that
deg derives instead; ``retired`` the keys deg once had, with where to go instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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


def _split_problem(value: Any, key: str) -> str | None:
    if isinstance(value, list) and sum(value) <= 0:
        return f"{key} must have a fraction > 0, got {value!r}"
    return None


# NWB's Subject (deg export nwb): sex as NWB and nwbinspector want it; age an ISO 8601
# duration (P90D, P12W, P1Y6M, PT36H), or a range (P90D/P120D; P90D/: at least; /P9D: at most)
SEXES = {"M": "male", "F": "female", "U": "unknown", "O": "other"}
SUBJECT_FIELDS = ("subject_id", "species", "sex", "age")
_NUM = r"\d+(\.\d+)?"
_DURATION = (  # P, then at least one part: nwbinspector's pattern
    rf"P(?!$|/)({_NUM}Y)?({_NUM}M)?({_NUM}W)?({_NUM}D)?(T(?=\d)({_NUM}H)?({_NUM}M)?({_NUM}S)?)?"
)
_AGE_RE = re.compile(rf"^{_DURATION}$|^{_DURATION}/({_DURATION})?$|^/{_DURATION}$")


def sex_problem(value: Any, key: str) -> str | None:
    if value is None or value in SEXES:
        return None
    options = ", ".join(f"{k} ({v})" for k, v in SEXES.items())
    return f"{key} must be one of {options}, got {value!r}"


def age_problem(value: Any, key: str) -> str | None:
    if value is None or (isinstance(value, str) and _AGE_RE.match(value)):
        return None
    return (
        f"{key} must be an ISO 8601 duration such as P90D (90 days), P12W or P1Y6M, or a "
        f"range P90D/P120D, got {value!r}"
    )


def subject_id_problem(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        return f"{key} must be a non-empty text, got {value!r}"
    if "/" in str(value):
        return f"{key} must not contain '/' (DANDI builds paths from it), got {value!r}"
    return None


def species_problem(value: Any, key: str) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return None
    return f"{key} must be a non-empty text such as Mus musculus, got {value!r}"


_SUBJECT_CHECKS = {
    "subject_id": subject_id_problem,
    "species": species_problem,
    "sex": sex_problem,
    "age": age_problem,
}


def subject_problem(values: Mapping[Any, Any], name: Callable[[str], str]) -> str | None:
    """What is wrong with NWB subject values {field: value} (None: nothing); ``name(field)``
    is how the line names a field (a dotted key, a CLI option)."""
    for f, value in values.items():
        if f not in _SUBJECT_CHECKS:
            return f"unknown subject field {name(str(f))!r} (known: {', '.join(SUBJECT_FIELDS)})"
        problem = _SUBJECT_CHECKS[f](value, name(f))
        if problem:
            return problem
    return None


def _subject_animals_problem(value: Any, key: str) -> str | None:
    """``{animal<i>: {subject fields}}``: each key an animal's name, each value fields."""
    if not isinstance(value, Mapping):
        return f"{key} must map animal names (animal0, animal1, ...) to subject fields"
    for animal, values in value.items():
        if not re.fullmatch(r"animal\d+", str(animal)):
            return f"{key}.{animal}: animals are named animal0, animal1, ..."
        if not isinstance(values, Mapping):
            return f"{key}.{animal} must map subject fields to values, got {values!r}"
        where = f"{key}.{animal}."
        problem = subject_problem(values, where.__add__)
        if problem:
            return problem
    return None


def _subject_videos_problem(value: Any, key: str) -> str | None:
    for video, values in value.items():
        if not isinstance(values, Mapping):
            return f"{key}.{video} must map subject fields to values, got {values!r}"
        values = dict(values)
        animals = values.pop("animals", None)
        where = f"{key}.{video}."
        problem = subject_problem(values, where.__add__)
        if problem is None and animals is not None:
            problem = _subject_animals_problem(animals, f"{key}.{video}.animals")
        if problem:
            return problem
    return None


@dataclass
class SubjectSection:
    """The animal in the videos: NWB's Subject in ``deg export nwb``'s files (provenance;
    no stage reads it). ``videos`` sets it per video, over the project-wide values."""

    subject_id: str | int | None = _f(
        None, "the animal's id (NWB subject_id)", Range(check=subject_id_problem)
    )
    species: str | None = _f(
        None,
        "Latin binomial such as Mus musculus, or an NCBI taxonomy link",
        Range(check=species_problem),
    )
    sex: str | None = _f(None, "M, F, U (unknown) or O (other)", Range(check=sex_problem))
    age: str | None = _f(
        None,
        "ISO 8601 duration at recording, e.g. P90D (90 days), P12W; a range P90D/P120D",
        Range(check=age_problem),
    )
    videos: dict[str, dict[str, Any]] = _f(
        {},
        "per video key, any of subject_id, species, sex, age over the values above, "
        "e.g. {mouse1: {subject_id: m1, sex: F}}; in a video of several animals also "
        "animals: {animal0: {subject_id: m12}, animal1: {...}}",
        Range(check=_subject_videos_problem),
    )
    animals: dict[str, dict[str, Any]] = _f(
        {},
        "in videos of several animals, per animal (animal0, animal1, ...) any of subject_id, "
        "species, sex, age over the values above (videos.<key>.animals over these)",
        Range(check=_subject_animals_problem),
    )


def _animals_videos_problem(value: Any, key: str) -> str | None:
    for video, n in value.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            return f"{key}.{video} must be a number of animals >= 1, got {n!r}"
    return None


@dataclass
class ProjectSection:
    """Who and what the project is about."""

    name: str = _f("", "project name; the folder is <name>_deepethogram")
    labeler: str | None = _f(None, "who labels (recorded for provenance)")
    class_names: list[str] = _f([], "behaviours, background first (background is implicit)")
    exclusive: bool = _f(
        False,
        "one behaviour (or background) per frame: the feature and sequence stages train a "
        "softmax over background + behaviours and decide by arg-max; the Labeler keeps one "
        "behaviour per frame",
    )
    subject: SubjectSection = field(default_factory=SubjectSection)
    animals: int = _f(
        1,
        "animals in each video (several: their tracks in DATA/<key>/<key>_animals.h5, deg tracks)",
        POSITIVE_INT,
    )
    animals_per_video: dict[str, int] = _f(
        {},
        "per video key, its number of animals over project.animals, e.g. {pair3: 3}",
        Range(check=_animals_videos_problem),
    )

    # DEG writes these; deg derives them from the folder so a moved project still works.
    deg_ignored: ClassVar[frozenset[str]] = frozenset(
        {"path", "config_file", "data_path", "model_path", "pretrained_path"}
    )


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
