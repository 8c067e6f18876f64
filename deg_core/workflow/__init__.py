"""Whole-pipeline workflows: the stages in order (``stages``), ``deg retrain``
(``retrain``, ``retrain_runner``), ``deg demo`` and its synthetic videos."""
