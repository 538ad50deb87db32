"""radsynth.nets."""
