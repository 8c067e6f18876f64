"""Labels: the DeepEthogram label file (``labels``), bouts on plain arrays (``bouts``),
and the review queue of frames worth a look (``review``)."""
