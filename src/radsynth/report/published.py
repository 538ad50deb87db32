"""The papers' published numbers, transcribed from their tables (shown beside ours in the HTML report).

Sources: /work/shared/papers (CoSinGAN: Zhang et al. 2020, arXiv:2010.05690; Zunair & Hamza 2021,
Network Modeling Analysis in Health Informatics and Bioinformatics 10:50).
"""

from __future__ import annotations

from radsynth.report.html import PaperTable

COSINGAN = "Zhang et al. 2020, CoSinGAN"
ZUNAIR = "Zunair & Hamza 2021"

COSINGAN_TABLE1 = PaperTable(
    """| Model | M1 ENet Lung | M1 ENet Infection | M1 UNet Lung | M1 UNet Infection | M2 ENet Lung | M2 ENet Infection | M2 UNet Lung | M2 UNet Infection | Overall Lung | Overall Infection |
|---|---|---|---|---|---|---|---|---|---|---|
| Pix2pix | 90.7 | 74.5 | 91.1 | 59.2 | 71.5 | 32.3 | 63.9 | 51.1 | 79.3 | 54.3 |
| Enhanced Pix2pix | 73.4 | 75.7 | 87.8 | 55.7 | 68.9 | 49.7 | 68.2 | 51.0 | 74.6 | 58.0 |
| CoSinGAN | 73.8 | 79.6 | 92.3 | 87.8 | 85.3 | 50.1 | 90.7 | 73.7 | 85.5 | 72.8 |

Image quality score: DSC (%) of segmenters trained on real images, applied to 2846 synthesized images (M1 / M2: modality 1 / 2).""",
    f"{COSINGAN}, Table 1",
)

COSINGAN_TABLE2 = PaperTable(
    """| Training set | Real images | ResNet18 Sensitivity | ResNet18 Specificity | ResNet18 Accuracy | ResNet50 Sensitivity | ResNet50 Specificity | ResNet50 Accuracy |
|---|---|---|---|---|---|---|---|
| Sin-TS | 1 | 1.000 (NaN, NaN) | 0.000 (NaN, NaN) | 0.608 (-0.095, 1.281) | 1.000 (NaN, NaN) | 0.000 (NaN, NaN) | 0.608 (-0.095, 1.281) |
| O-STS | 1 | 0.729 (-0.313, 1.538) | 0.420 (-0.224, 1.656) | 0.608 (0.044, 1.177) | 0.907 (0.531, 1.252) | 0.326 (-0.324, 1.608) | 0.680 (0.288, 1.201) |
| RC-STS | 1 | 0.685 (-0.528, 1.771) | 0.511 (-0.062, 1.569) | 0.617 (-0.144, 1.349) | 0.954 (0.863, 1.076) | 0.348 (-0.510, 0.913) | 0.717 (-0.037, 1.348) |
| Two-TS | 2 | 1.000 (NaN, NaN) | 0.000 (NaN, NaN) | 0.608 (-0.095, 1.281) | 1.000 (NaN, NaN) | 0.015 (-0.043, 0.076) | 0.614 (-0.071, 1.273) |
| IF-STS | 2 | 0.876 (0.552, 1.263) | 0.723 (-0.442, 1.474) | 0.816 (0.527, 1.084) | 0.959 (0.855, 1.088) | 0.337 (-0.478, 1.049) | 0.715 (0.279, 1.170) |
| OC-TS | 2846 | 0.980 (0.908, 1.050) | 0.576 (0.169, 1.090) | 0.822 (0.333, 1.254) | 0.961 (0.824, 1.090) | 0.792 (0.577, 1.072) | 0.895 (0.751, 1.005) |

256 x 256 px; 95 % t-interval over the 5 test CT scans.""",
    f"{COSINGAN}, Table 2",
)

COSINGAN_TABLE3 = PaperTable(
    """| Training set | Real images | ResNet18 Sensitivity | ResNet18 Specificity | ResNet18 Accuracy | ResNet50 Sensitivity | ResNet50 Specificity | ResNet50 Accuracy |
|---|---|---|---|---|---|---|---|
| Sin-TS | 1 | 1.000 (NaN, NaN) | 0.000 (NaN, NaN) | 0.608 (-0.095, 1.281) | 1.000 (NaN, NaN) | 0.000 (NaN, NaN) | 0.608 (-0.095, 1.281) |
| O-STS | 1 | 0.939 (0.798, 1.130) | 0.201 (-0.430, 0.704) | 0.650 (-0.060, 1.293) | 0.976 (0.908, 1.064) | 0.299 (-0.336, 0.775) | 0.711 (0.220, 1.163) |
| RC-STS | 1 | 0.998 (0.991, 1.006) | 0.258 (-0.401, 0.708) | 0.708 (-0.046, 1.349) | 0.237 (-0.419, 0.736) | 0.936 (0.846, 1.107) | 0.510 (-0.254, 1.210) |
| Two-TS | 2 | 1.000 (NaN, NaN) | 0.000 (NaN, NaN) | 0.608 (-0.095, 1.281) | 1.000 (NaN, NaN) | 0.000 (NaN, NaN) | 0.608 (-0.095, 1.281) |
| IF-STS | 2 | 0.778 (0.324, 1.224) | 0.780 (0.575, 1.139) | 0.779 (0.453, 1.158) | 0.863 (0.648, 1.147) | 0.538 (-0.252, 1.188) | 0.736 (0.358, 1.128) |
| OC-TS | 2846 | 0.854 (0.606, 1.147) | 0.947 (0.447, 1.317) | 0.890 (0.793, 1.012) | 0.922 (0.767, 1.075) | 0.917 (0.070, 1.484) | 0.920 (0.864, 0.979) |

512 x 512 px; 95 % t-interval over the 5 test CT scans.""",
    f"{COSINGAN}, Table 3",
)

COSINGAN_TABLE4 = PaperTable(
    """| Training set | Real images | ENet M1 Lung | ENet M1 Infection | ENet M2 Lung | ENet M2 Infection | ENet overall Lung | ENet overall Infection | UNet M1 Lung | UNet M1 Infection | UNet M2 Lung | UNet M2 Infection | UNet overall Lung | UNet overall Infection |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| Sin-TS | 1 | 73.9 | 28.7 | 0.0 | 0.0 | 50.1 (-71.1, 130.9) | 19.4 (-29.6, 53.1) | 78.1 | 34.0 | 8.0 | 1.6 | 55.5 (-60.3, 132.3) | 23.5 (-34.9, 64.4) |
| O-STS | 1 | 81.5 | 49.4 | 7.3 | 0.9 | 57.5 (-65.7, 139.1) | 33.7 (-46.3, 86.6) | 72.5 | 59.5 | 1.0 | 0.6 | 49.4 (-68.7, 128.5) | 40.5 (-56.9, 105.2) |
| RC-STS | 1 | 75.5 | 50.7 | 6.7 | 4.3 | 53.2 (-63.7, 130.3) | 35.7 (-38.0, 86.2) | 73.9 | 57.9 | 6.5 | 25.2 | 52.0 (-56.7, 125.4) | 47.3 (-29.9, 121.5) |
| Two-TS | 2 | 70.1 | 24.5 | 74.1 | 39.8 | 71.4 (40.9, 103.4) | 29.4 (-4.7, 78.9) | 68.9 | 34.4 | 59.2 | 17.1 | 65.8 (32.5, 93.7) | 28.8 (-22.4, 67.9) |
| IF-STS | 2 | 75.3 | 40.3 | 81.0 | 36.2 | 77.1 (62.9, 94.5) | 39.0 (23.5, 52.6) | 76.1 | 57.8 | 74.0 | 48.4 | 75.4 (54.0, 94.3) | 54.8 (36.7, 69.1) |
| OC-TS | 2846 | 87.6 | 68.2 | 76.6 | 38.6 | 84.0 (54.7, 107.1) | 58.6 (-7.8, 119.7) | 90.8 | 77.3 | 87.8 | 75.2 | 89.5 (75.0, 103.0) | 76.6 (56.9, 99.4) |

DSC (%) on 674 test slices of 5 CT scans; 95 % t-interval over the scans.""",
    f"{COSINGAN}, Table 4",
)

ZUNAIR_TABLE1 = PaperTable(
    """| Model | Real SEN (%) | Real FN | Real Skew | Real + G_NC SEN (%) | FN | Skew | Real + G_NC + G_PC SEN (%) | FN | Skew | Only synthetic SEN (%) | FN |
|---|---|---|---|---|---|---|---|---|---|---|---|
| VGG-16 | 19.56 | 37 | 91.87 | 54.34 | 21 | 0.98 | 63.04 | 17 | 0.79 | 50.00 | 23 |
| ResNet-50 | 32.61 | 31 | 91.87 | 41.30 | 27 | 0.98 | 43.47 | 26 | 0.79 | 10.86 | 41 |
| DenseNet-102 | 26.08 | 34 | 91.87 | 28.27 | 33 | 0.98 | 34.73 | 30 | 0.79 | 8.69 | 42 |
| DenseNet-121 + BGT | 36.95 | 29 | 91.87 | 45.65 | 25 | 0.98 | 52.17 | 22 | 0.79 | 21.73 | 36 |

Normal vs COVID-19 test set.""",
    f"{ZUNAIR}, Table 1",
)

ZUNAIR_TABLE2 = PaperTable(
    """| Model | Real SEN (%) | Real FN | Real Skew | Real + G_PC SEN (%) | FN | Skew | Real + G_PC + G_NC SEN (%) | FN | Skew | Only synthetic SEN (%) | FN |
|---|---|---|---|---|---|---|---|---|---|---|---|
| VGG-16 | 8.69 | 42 | 22.9 | 29.50 | 24 | 0.95 | 52.17 | 22 | 0.19 | 39.13 | 28 |
| ResNet-50 | 21.73 | 36 | 22.9 | 36.95 | 29 | 0.95 | 41.30 | 27 | 0.19 | 13.04 | 40 |
| DenseNet-102 | 4.34 | 44 | 22.9 | 21.74 | 36 | 0.95 | 32.43 | 32 | 0.19 | 6.52 | 43 |
| DenseNet-121 + BGT | 32.60 | 31 | 22.9 | 41.30 | 27 | 0.95 | 47.82 | 24 | 0.19 | 32.60 | 31 |

Pneumonia vs COVID-19 test set.""",
    f"{ZUNAIR}, Table 2",
)

JIANG = "Jiang et al. 2020, global-local cGAN"
LIANG = "Liang et al. 2021, pix2pix CXR"

JIANG_TABLE2 = PaperTable(
    """| Method | Complemented FID | PSNR | SSIM | RMSE | Lung-only FID | PSNR | SSIM | RMSE |
|---|---|---|---|---|---|---|---|---|
| Ours (global-local) | 0.0327 | 26.89 | 0.8936 | 0.0813 | 0.3641 | 28.17 | 0.8959 | 0.2747 |
| SEAN | 0.0341 | 26.69 | 0.8922 | 0.0837 | 0.3575 | 28.02 | 0.8952 | 0.2795 |
| SPADE | 0.0389 | 26.50 | 0.8903 | 0.0854 | 0.4812 | 27.79 | 0.8928 | 0.2864 |
| Pix2pixHD | 0.0430 | 26.63 | 0.8893 | 0.0840 | 0.4283 | 27.82 | 0.8910 | 0.2856 |
| Pix2pix | 0.0611 | 26.56 | 0.8870 | 0.0913 | 8.4077 | 26.56 | 0.8855 | 0.3301 |""",
    f"{JIANG}, Table II",
)

_JIANG_HEADER = """| Ratio | GGO Dice | GGO Sen | GGO Spec | Consolidation Dice | Sen | Spec | Infection Dice | Sen | Spec |
|---|---|---|---|---|---|---|---|---|---|
"""
JIANG_TABLE3 = PaperTable(
    _JIANG_HEADER + """| 0% | 87.55±0.20 | 86.84±0.31 | 99.82±0.01 | 84.88±0.33 | 82.80±0.51 | 99.96±ε | 89.57±0.18 | 88.58±0.23 | 99.82±0.01 |
| 10% | 87.34±0.27 | 85.08±0.45 | 99.85±0.01 | 85.91±0.44 | 84.23±0.55 | 99.96±ε | 89.35±0.32 | 87.14±0.39 | 99.85±0.01 |
| 20% | 84.22±0.36 | 83.38±0.41 | 99.77±0.01 | 84.30±0.19 | 83.60±0.33 | 99.95±ε | 86.67±0.36 | 85.83±0.27 | 99.76±0.01 |
| 30% | 87.43±0.35 | 85.73±0.41 | 99.84±0.01 | 86.01±0.21 | 87.14±0.21 | 99.95±ε | 89.32±0.22 | 88.11±0.30 | 99.82±0.01 |
| 40% | 87.07±0.27 | 86.70±0.29 | 99.80±0.01 | 85.81±0.24 | 81.94±0.36 | 99.97±ε | 88.92±0.20 | 87.90±0.30 | 99.81±0.01 |
| 50% | 86.98±0.35 | 86.46±0.40 | 99.80±0.01 | 85.58±0.23 | 82.18±0.36 | 99.97±ε | 89.19±0.24 | 88.12±0.37 | 99.82±0.01 |

UNet trained with a proportion of the real images replaced by synthetic ones; mean ± 95 % interval over 10 test folds.""",
    f"{JIANG}, Table III",
)
JIANG_TABLE4 = PaperTable(
    _JIANG_HEADER + """| 0% | 87.55±0.20 | 86.84±0.31 | 99.82±0.01 | 84.88±0.33 | 82.80±0.51 | 99.96±ε | 89.57±0.18 | 88.58±0.23 | 99.82±0.01 |
| 10% | 87.65±0.40 | 85.82±0.32 | 99.84±0.01 | 86.12±0.33 | 86.02±0.63 | 99.95±ε | 89.67±0.31 | 88.11±0.32 | 99.84±0.01 |
| 20% | 87.87±0.34 | 87.67±0.28 | 99.81±0.01 | 85.52±0.34 | 84.16±0.53 | 99.96±ε | 89.87±0.12 | 89.44±0.20 | 99.81±0.01 |
| 30% | 87.99±0.36 | 87.25±0.36 | 99.82±0.01 | 86.33±0.30 | 86.38±0.51 | 99.95±ε | 89.78±0.22 | 89.17±0.27 | 99.82±0.01 |
| 40% | 88.33±0.22 | 88.71±0.32 | 99.81±0.01 | 87.25±0.28 | 86.30±0.38 | 99.96±ε | 90.19±0.17 | 90.34±0.31 | 99.81±ε |
| 50% | 88.16±0.30 | 86.88±0.01 | 99.84±0.01 | 87.09±0.34 | 86.54±0.47 | 99.96±ε | 90.06±0.30 | 88.88±0.18 | 99.83±0.01 |

UNet trained on the real images plus a proportion of synthetic ones; mean ± 95 % interval over 10 test folds.""",
    f"{JIANG}, Table IV",
)

LIANG_TABLE1 = PaperTable(
    """| Training set | Accuracy | Normal P / R / F1 | COVID-19 P / R / F1 | Viral pneumonia P / R / F1 |
|---|---|---|---|---|
| Original imbalanced (transfer learning) | 0.961 | 0.935 / 0.967 / 0.951 | 1.000 / 0.967 / 0.983 | 0.950 / 0.950 / 0.950 |
| Original imbalanced (from scratch) | 0.956 | 0.967 / 0.967 / 0.967 | 1.000 / 0.933 / 0.966 | 0.906 / 0.967 / 0.935 |
| cGAN enhanced (transfer learning) | 0.978 | 0.952 / 0.983 / 0.967 | 1.000 / 1.000 / 1.000 | 0.983 / 0.950 / 0.966 |
| cGAN enhanced (from scratch) | 0.961 | 0.935 / 0.967 / 0.951 | 0.984 / 1.000 / 0.992 | 0.965 / 0.917 / 0.940 |

ResNet-50, 3 classes, 180 test images (60 per class); P / R / F1: precision, recall, F1 score.""",
    f"{LIANG}, Table I",
)
