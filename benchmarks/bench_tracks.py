"""Multi-animal tracking: identity switches on generated videos, agreement with SLEAP on twoflies.

Usage::

    uv run python benchmarks/bench_tracks.py                  # print the figures
    uv run python benchmarks/bench_tracks.py --append benchmarks/RESULTS.md

Generated videos (deg_core.workflow.synthetic_multi): 2 and 3 animals that touch and
cross; identity switches per 1,000 frames counted on all frames and with the merged frames
left out (inside a merge positions are k-means estimates; a switch that outlasts the merge
is what matters). Real video (../shared/data/twoflies, skipped when absent): the tracker's
centroids against SLEAP's (mean of visible skeleton points; its track ids are fragmented,
so its two best-scored instances per frame are linked frame to frame by least distance):
median distance, share of frames where the matching swaps relative to the previous frame,
and whether those swaps fall where the tracker flagged touching (merged, swap_candidates).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deg_core.tracking.multi import (  # noqa: E402
    best_assignment,
    swap_candidates,
    switch_frames,
    track_animals,
)
from deg_core.workflow.synthetic_multi import MultiSpec, write_multi_video  # noqa: E402

TWOFLIES = ROOT.parent / "shared" / "data" / "twoflies"


def generated(n_animals: int, seeds: list[int], frames: int, size: int) -> dict[str, float]:
    total = switches = apart = merged = contact = 0
    secs = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            path = Path(tmp) / f"multi_{n_animals}_{seed}.mp4"
            spec = MultiSpec(n_animals=n_animals, n_frames=frames, size=size, seed=seed)
            truth = write_multi_video(path, spec)
            t0 = time.perf_counter()
            tracks = track_animals(path, n_animals)
            secs += time.perf_counter() - t0
            held = tracks.center.copy()
            held[tracks.merged] = np.nan
            total += frames
            switches += len(switch_frames(tracks.center, truth.centers))
            apart += len(switch_frames(held, truth.centers))
            merged += int(tracks.merged.sum())
            contact += int(truth.contact.sum())
    return {
        "frames": total,
        "switches_per_1000": 1000 * switches / total,
        "switches_apart_per_1000": 1000 * apart / total,
        "contact_share": contact / total,
        "merged_share": merged / total,
        "track_fps": total / secs,
    }


def sleap_linked(csv_path: Path, n_frames: int) -> np.ndarray:
    """(T, 2, 2): SLEAP's two best-scored instances per frame, linked frame to frame."""
    per: dict[int, list[tuple[float, float, float]]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            per.setdefault(int(row["frame"]), []).append(
                (float(row["score"]), float(row["x"]), float(row["y"]))
            )
    out = np.full((n_frames, 2, 2), np.nan)
    last = None
    for t in range(n_frames):
        inst = sorted(per.get(t, []), reverse=True)[:2]
        if len(inst) < 2:
            continue
        xy = np.array([[x, y] for _, x, y in inst])
        if last is not None:
            xy = xy[best_assignment(np.linalg.norm(last[:, None] - xy[None], axis=2))]
        out[t] = last = xy
    return out


def twoflies() -> dict[str, float] | None:
    videos = sorted(TWOFLIES.glob("*.mp4"))
    tracks_csv = TWOFLIES / "twoflies_sleap_tracks.csv"
    if not videos or not tracks_csv.exists():
        return None
    t0 = time.perf_counter()
    tracks = track_animals(videos[0], 2)
    secs = time.perf_counter() - t0
    sleap = sleap_linked(tracks_csv, tracks.n_frames)
    ours = tracks.center.astype(np.float64)
    ok = ~(np.isnan(ours).any(axis=(1, 2)) | np.isnan(sleap).any(axis=(1, 2)))
    dist = []
    for t in np.nonzero(ok)[0]:
        cost = np.linalg.norm(ours[t][:, None] - sleap[t][None], axis=2)
        dist.extend(cost[np.arange(2), best_assignment(cost)])
    dist_arr = np.array(dist).reshape(-1, 2)
    apart_rows = ~tracks.merged[ok]
    swaps = switch_frames(ours, sleap)
    held = ours.copy()
    held[tracks.merged] = np.nan
    swaps_apart = switch_frames(held, sleap)
    cands = np.array(swap_candidates(tracks))
    merged_idx = np.nonzero(tracks.merged)[0]

    def near(frames: np.ndarray, targets: np.ndarray, k: int = 3) -> float:
        if not len(frames):
            return float("nan")
        if not len(targets):
            return 0.0
        return float(np.mean([np.abs(targets - f).min() <= k for f in frames]))

    n_ok = int(ok.sum())
    return {
        "frames": tracks.n_frames,
        "compared_frames": n_ok,
        "median_px": float(np.median(dist_arr)),
        "median_px_apart": float(np.median(dist_arr[apart_rows])),
        "merged_share": float(tracks.merged.mean()),
        "swap_share": len(swaps) / max(n_ok, 1),
        "swap_share_apart": len(swaps_apart) / max(n_ok, 1),
        "swaps": len(swaps),
        "swaps_apart": len(swaps_apart),
        "swaps_near_merged": near(swaps, merged_idx),
        "swaps_apart_near_candidates": near(swaps_apart, cands),
        "candidates": len(cands),
        "track_fps": tracks.n_frames / secs,
    }


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        name = next(
            (ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), "?"
        )
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        name, commit = "?", "?"
    return f"{name}, 2 cores shared; commit {commit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="generated videos per animal count")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--append", type=Path, help="append a markdown section to this file")
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    rows = {
        "2 animals, 96 px": generated(2, seeds, args.frames, 96),
        "3 animals, 128 px": generated(3, seeds, args.frames, 128),
    }
    flies = twoflies()
    lines = [
        "",
        "## Multi-animal tracking (issue 24)",
        "",
        f"`uv run python benchmarks/bench_tracks.py` on {machine()}.",
        "",
        "Generated videos (`synthetic_multi`, "
        f"{args.seeds} x {args.frames} frames each; animals touch and cross):",
        "",
        "| video | frames | contact | merged | switches / 1,000 frames | switches / 1,000, "
        "merged frames left out | tracking fps |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['frames']} | {r['contact_share']:.0%} | {r['merged_share']:.0%} | "
            f"{r['switches_per_1000']:.1f} | {r['switches_apart_per_1000']:.1f} | "
            f"{r['track_fps']:.0f} |"
        )
    if flies is None:
        lines += ["", f"twoflies: skipped ({TWOFLIES} absent)."]
    else:
        f = flies
        lines += [
            "",
            f"twoflies (384x384, {f['frames']} frames; {f['compared_frames']} with two SLEAP "
            "instances) against SLEAP's centroids:",
            "",
            "| median distance px (all / not merged) | merged | frames with a swap (all / "
            "not merged) | swaps within 3 frames of a merged frame | swaps (not merged) within "
            "3 frames of a swap candidate | swap candidates | tracking fps |",
            "|---|---|---|---|---|---|---|",
            f"| {f['median_px']:.1f} / {f['median_px_apart']:.1f} | {f['merged_share']:.0%} | "
            f"{f['swap_share']:.1%} ({f['swaps']}) / {f['swap_share_apart']:.1%} "
            f"({f['swaps_apart']}) | {f['swaps_near_merged']:.0%} | "
            f"{f['swaps_apart_near_candidates']:.0%} | {f['candidates']} | {f['track_fps']:.0f} |",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
