"""Datasets that turn project videos and labels into training samples."""
