"""Train/val/test assignment of videos (``DATA/split.yaml``, DEG's layout).

Splits are per video, never per frame. Rules: a video's split never changes once
assigned unless the user sets it; new videos are drawn at random with the
configured fractions, except that the first video is train and, once there are
two, at least one is val — a project must be trainable and validatable. Unlike
DEG's ``get_valid_split``, nothing here retries until a condition holds, so it
cannot loop forever.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from deg_core.errors import ProjectError
from deg_core.fileio import atomic_write_text, dump_yaml, load_yaml

SPLITS = ("train", "val", "test")


class SplitTable:
    """Video key -> split, plus the fractions used for new videos."""

    def __init__(self, assignment: dict[str, str] | None = None, fractions=(0.8, 0.2, 0.0)):
        self.assignment: dict[str, str] = dict(assignment or {})
        self.fractions = [float(f) for f in fractions]

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: Path, fractions=(0.8, 0.2, 0.0)) -> SplitTable:
        """Read DEG's ``{metadata: {split: [..]}, train: [...], val: [...], test: [...]}``."""
        if not path.exists():
            return cls(fractions=fractions)
        data = load_yaml(path, what="split file") or {}
        if not isinstance(data, dict):
            raise ProjectError("split file must be a mapping of split name to video keys", path)
        table = cls(fractions=fractions)
        for split in SPLITS:
            keys = data.get(split) or []
            if not isinstance(keys, list):
                raise ProjectError(f"'{split}' must be a list of video keys", path)
            for key in keys:
                if str(key) in table.assignment:
                    raise ProjectError(f"video {key!r} is listed in two splits", path)
                table.assignment[str(key)] = split
        return table

    def text(self) -> str:
        """split.yaml's content."""
        data: dict[str, Any] = {"metadata": {"split": self.fractions}}
        for split in SPLITS:
            data[split] = sorted(k for k, s in self.assignment.items() if s == split)
        return dump_yaml(data)

    def save(self, path: Path) -> None:
        atomic_write_text(path, self.text())

    # ------------------------------------------------------------------ queries
    def keys_in(self, split: str) -> list[str]:
        return sorted(k for k, s in self.assignment.items() if s == split)

    def counts(self) -> dict[str, int]:
        return {s: len(self.keys_in(s)) for s in SPLITS}

    def warnings(self) -> list[str]:
        """Problems a user should hear about (a project with no val video cannot fit thresholds)."""
        c = self.counts()
        out = []
        if self.assignment and c["train"] == 0:
            out.append("no video is in the train split")
        if len(self.assignment) >= 2 and c["val"] == 0:
            out.append("no video is in the val split: thresholds cannot be fitted")
        return out

    # ------------------------------------------------------------------ changes
    def assign_new(self, keys: list[str], rng: random.Random, split: str | None = None) -> None:
        """Assign splits to keys not yet in the table (explicit ``split`` wins for all of them)."""
        new = [k for k in keys if k not in self.assignment]
        if split is not None:
            check_split_name(split)
            for k in new:
                self.assignment[k] = split
            return
        order = list(new)
        rng.shuffle(order)  # which new video fills a missing split is random too
        for k in order:
            c = self.counts()
            if c["train"] == 0:
                self.assignment[k] = "train"
            elif c["val"] == 0:
                self.assignment[k] = "val"
            else:
                self.assignment[k] = rng.choices(SPLITS, weights=self.fractions)[0]

    def set(self, key: str, split: str) -> None:
        check_split_name(split)
        self.assignment[key] = split

    def remove(self, key: str) -> None:
        self.assignment.pop(key, None)


def check_split_name(split: str) -> None:
    if split not in SPLITS:
        raise ProjectError(f"unknown split {split!r}: choose train, val or test")


def check_fractions(fractions: list[float]) -> None:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ProjectError(
            f"split.train_val_test must be three non-negative fractions, got {fractions}"
        )
