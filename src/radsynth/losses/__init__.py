"""radsynth.losses."""
