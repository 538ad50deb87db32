"""radsynth.evaluate."""
