"""Lesion layouts and lesion editing learned from one or two annotated slices.

Instead of re-rendering annotated masks (CoSinGAN, global-local cGAN), this package generates the
lesion and puts it into REAL slices, so everything outside the lesion stays real (Hu et al., CVPR
2023, label-free tumour synthesis; FreeTumor, Nat. Commun. 2025; CarveMix, MICCAI 2021 as the
copy-paste baseline):

* ``model``  -- ``LesionModel``: layout statistics and per-class appearance measured on the slice(s);
* ``layout`` -- new infection label maps for any lung (``sample_layout``);
* ``edit``   -- ``add_lesions`` / ``remove_lesions`` / ``paste_lesions`` on one slice;
* ``run``    -- ``radsynth train lesions``, ``synth LESION_RUN --edit``, ``data layouts``;
* ``online`` -- new lesions drawn into a segmenter's training images as it trains (``--set lesions=RUN``).
"""

EDITS = ("add", "remove", "paste", "replace")  # synth LESION_RUN --edit; here, free of imports, so the CLI parser can name them
ONLINE_EDITS = ("add", "replace")  # evaluate segment --set lesion_edit=...: the edits that draw new lesions into training images
BURDENS = ("model", "same")  # synth LESION_RUN --burden: new lesion area from the lesion model, or the slice's own infection area
