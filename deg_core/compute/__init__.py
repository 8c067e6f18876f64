"""Where and how much to compute: batch sizes that fit (``autobatch``) and torchrun
(``distributed``)."""
