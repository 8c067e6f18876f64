"""deg_core.report: PR curves, tables, JSON-safe metrics and PNG charts."""

from __future__ import annotations

import numpy as np
import pytest


def test_pr_curve_points_are_thresholded_predictions():
    from deg_core.report.notebook import operating_point, pr_curve

    rng = np.random.default_rng(0)
    scores = rng.choice(np.linspace(0, 1, 7), size=200)  # ties
    labels = rng.integers(-1, 2, size=200)
    recall, precision = pr_curve(scores, labels)
    assert (recall[0], precision[0]) == (0.0, 1.0) and recall[-1] == 1.0
    assert np.all(np.diff(recall) >= 0)
    for i, v in enumerate(np.unique(scores)[::-1]):  # present: score > just below v
        r, p = operating_point(scores, labels, v - 1e-9)
        assert (recall[i + 1], precision[i + 1]) == pytest.approx((r, p))


def test_tables_metrics_and_pictures(tmp_path):
    from PIL import Image

    from deg_core.report import charts as plots
    from deg_core.report.notebook import Table, json_safe

    table = Table([{"name": "<b>", "f1": float("nan")}, {"name": "x", "f1": 0.5, "n": 3}])
    assert table.columns == ["name", "f1", "n"]
    assert "&lt;b&gt;" in table._repr_html_() and "<b>" not in table._repr_html_()
    assert "0.500" in repr(table) and "–" in repr(table)
    assert json_safe({"a": np.float32(1.5), "b": [float("inf")], "c": np.arange(2)}) == {
        "a": 1.5,
        "b": [None],
        "c": [0, 1],
    }
    figs = [
        plots.line_chart(
            {"a": ([1, 2, 3], [1.0, float("nan"), 2.0])},
            title="t",
            xlabel="x",
            ylabel="y",
            marks={"best": (3, 2.0)},
        ),
        plots.bar_chart({"val": {"a": 0.5, "b": None}}, title="t", ylabel="F1"),
        plots.pr_chart({"a": (np.array([0, 1.0]), np.array([1, 0.5]))}, {"a": (0.5, 0.7, 0.3)}),
        plots.ethogram_chart([("labels", np.array([[1], [-1], [0]]))], ["a"]),
        plots.image_grid([np.zeros((8, 8, 3), np.uint8)] * 3, ["0", "1", "2"], columns=2),
    ]
    for fig in figs:
        with Image.open(fig.save(tmp_path / "f.png")) as im:
            assert im.format == "PNG" and im.size == (fig.width, fig.height)
    assert plots.nice_ticks(0, 1, 5).tolist() == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
