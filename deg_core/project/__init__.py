"""The project store on disk: the folder (``project``), per-video records, splits, model
runs, inference outputs, status, and the lock and transactions that keep it consistent."""
