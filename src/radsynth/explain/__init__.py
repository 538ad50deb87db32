"""radsynth.explain."""
