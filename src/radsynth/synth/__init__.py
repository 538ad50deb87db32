"""radsynth.synth."""

FUSIONS = ("blend", "detail")  # IF (synth --fusion): eq. 11 as printed, or low frequencies blended and detail from one image; here, free of imports, so the CLI parser can name them
