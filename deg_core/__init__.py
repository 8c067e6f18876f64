"""deg core: project store, video, labels, models, training, inference."""
