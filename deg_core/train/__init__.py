"""Trainers for the pipeline stages, and the loop they share."""
