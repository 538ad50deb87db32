"""The training engine shared by synthesizers, segmenters and classifiers: the step loop with
per-step seeding and resume (``trainer``), safe checkpoints (``checkpoint``) and LR schedules
(``schedule``). It imports nothing from ``radsynth.synth`` or ``radsynth.evaluate``."""
