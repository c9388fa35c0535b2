"""Castiel: an open-source integration platform."""
