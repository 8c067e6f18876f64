"""Evaluation: frame metrics and thresholds (``metrics``), bout cleaning (``postprocess``),
per-frame and bout scores of predictions (``evaluate``), and ``deg evaluate`` on a project
(``scoring``)."""
