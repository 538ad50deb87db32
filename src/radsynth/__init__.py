"""radsynth: synthesize labelled chest radiology images from very few real examples."""

__version__ = "0.1.0"
