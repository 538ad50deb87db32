"""radsynth.bench: training and synthesis speed and peak memory of every network (``radsynth bench``)."""
