"""Neural networks: the flow generator (stage 1) and the feature extractor (stage 2)."""
