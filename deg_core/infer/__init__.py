"""Inference: feature extraction to ``DATA/<key>/<key>_outputs.h5`` (``features``) and the
sequence model's probabilities and predictions (``sequence``)."""
