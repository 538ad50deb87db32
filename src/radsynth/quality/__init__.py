"""radsynth.quality: image quality, fidelity, diversity and privacy scores of synthetic sets.

Paired PSNR / SSIM / RMSE (Jiang Table II), FD / KID on pluggable features, the segmentation-based
score (CoSinGAN Table 1), diversity, and a memorisation audit. Kept free of heavy imports: the
CLI builds its parser from ``radsynth.quality.cli`` without importing torch.
"""
