"""radsynth.evaluate: downstream segmentation on real, synthetic and mixed training sets, tested on real patients.

Kept free of heavy imports: the CLI reads ``SPEC_HELP`` while building its parser.
"""

SPEC_HELP = "oc | sin:ID | sin:auto | two:ID1,ID2 | two:auto | synth:DIR | replace:P:DIR | add:P:DIR (P a fraction such as 0.3 or 30%)"
