"""radsynth.report."""
