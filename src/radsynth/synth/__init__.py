"""radsynth.synth."""
