"""radsynth.experiments."""
