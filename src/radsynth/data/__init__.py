"""radsynth.data."""
