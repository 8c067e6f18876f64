"""Locating the animal without labels (``track``) and the animal-centred crop every stage
reads through (``crop``)."""
