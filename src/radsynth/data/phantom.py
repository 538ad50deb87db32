"""Procedural chest phantoms: the embedded default data set (``make demo``, fast test fixture).

Two generators, both seeded (``np.random.default_rng(seed)`` passed around, no global state),
vectorised numpy / scipy.ndimage, and resolution independent (every size is in millimetres or
in fractions of the image, then sampled on the requested grid, 32 to 512 px):

* ``ct_phantom_volume`` / ``ct_phantom_slice``: axial chest CT in Hounsfield units with a
  label map in radsynth's schema (0 background, 1 lung, 2 GGO, 3 consolidation). The body is a
  superellipse with skin, subcutaneous fat, muscle and a chest wall with ribs; the mediastinum
  holds heart, aorta, great vessels, trachea / main bronchi and oesophagus; spine and sternum
  are bone; two bean-shaped lungs (the left one with the cardiac notch) carry a vessel tree grown
  from each hilum; lesions are 3-D blobs clipped to the lung. Anatomy follows a height
  coordinate ``t`` (0 lung apex, 1 lung base), so neighbouring slices change smoothly.
* ``cxr_phantom``: a PA chest radiograph as 8-bit greyscale (bright bone, dark lungs) for the
  classes ``CXR_CLASSES``.

``write_ct_phantom`` and ``write_cxr_phantom`` write them to disk in the same layouts as the
shared real data (NIfTI volumes + ``volumes.csv``; class folders of PNGs + ``manifest.csv``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from radsynth.data.labels import BACKGROUND, CONSOLIDATION, GGO, LUNG

INFECTION_MODES = ("none", "ggo", "mixed")
CXR_CLASSES = ("COVID-19", "Normal", "Pneumonia")
MIN_SIZE = 32

# Hounsfield units of the tissues (means; texture and noise come on top).
HU_AIR = -1000.0
HU_FAT = -100.0
HU_SOFT = 40.0
HU_BLOOD = 40.0
HU_LIVER = 60.0
HU_BONE_CORTEX = 900.0
HU_BONE_MARROW = 250.0
HU_CARTILAGE = 130.0
HU_MIN, HU_MAX = -1024.0, 3071.0

# Position of the single slice returned by ct_phantom_slice (0 apex .. 1 base): the level of
# the lower main / intermediate bronchi, with the heart and descending aorta in view.
MID_CHEST_T = 0.58


@dataclass(frozen=True)
class CTPhantom:
    """A phantom CT volume.

    image_hu: (Z, H, W) float32, Hounsfield units (air -1000, lung ~ -850, fat ~ -100,
        soft tissue ~ 40, bone 250..900), clipped to [-1024, 3071].
    label: (Z, H, W) uint8, radsynth schema (0 background, 1 lung, 2 GGO, 3 consolidation).
    spacing: (row mm, col mm, slice mm).

    Slice 0 is the most inferior (lung base), slice Z-1 the most superior (apex), as in the
    shared RP9 volumes; rows run anterior (top) to posterior, columns patient right (left of
    the image) to patient left.
    """

    image_hu: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]


# --------------------------------------------------------------------------------------------
# argument checks and small helpers


def _check_size(size: int) -> int:
    if int(size) != size or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {size!r}")
    return int(size)


def _check_infection(infection: str) -> str:
    if infection not in INFECTION_MODES:
        raise ValueError(f"infection must be one of {INFECTION_MODES}, got {infection!r}")
    return infection


def _check_positive(name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _derived_seed(*keys: int) -> int:
    """A 32-bit seed derived from integer keys (independent streams per patient / image)."""
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0])


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation matrix mapping a coarse axis onto a fine one (edges aligned)."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    i0 = np.minimum(np.floor(pos).astype(np.int64), n_in - 2) if n_in > 1 else np.zeros(n_out, np.int64)
    f = pos - i0
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), i0] += (1.0 - f).astype(np.float32)
    if n_in > 1:
        m[np.arange(n_out), i0 + 1] += f.astype(np.float32)
    return m


def _noise_fields(rng: np.random.Generator, n: int, shape: tuple[int, ...], sigma_px: tuple[float, ...]) -> np.ndarray:
    """``n`` smooth Gaussian random fields of ``shape`` (2-D or 3-D) with unit std.

    ``sigma_px`` is the correlation length per axis in pixels. The last two axes are generated
    on a coarse grid (cell ~ sigma / 2 where sigma > 4 px) and upsampled linearly with two small
    matrix products, so the cost hardly depends on the output size.
    """
    shape = tuple(int(d) for d in shape)
    coarse = list(shape)
    for ax in (-2, -1):
        if sigma_px[ax] > 4.0:
            coarse[ax] = int(np.ceil(shape[ax] / (sigma_px[ax] / 2.0))) + 2
    sig = [s * c / d for s, c, d in zip(sigma_px, coarse, shape, strict=True)]
    mh = _interp_matrix(shape[-2], coarse[-2])
    mw = _interp_matrix(shape[-1], coarse[-1])
    out = np.empty((n, *shape), dtype=np.float32)
    for i in range(n):
        g = ndi.gaussian_filter(rng.standard_normal(coarse, dtype=np.float32), sig, mode="wrap", truncate=3.0)
        g = np.matmul(np.matmul(mh, g), mw.T)
        sd = float(g.std())
        out[i] = (g - g.mean()) / (sd if sd > 0 else 1.0)
    return out


def _grow_tree(
    rng: np.random.Generator,
    starts: np.ndarray,
    dirs: np.ndarray,
    radius: np.ndarray,
    n_gen: int,
    len_per_radius: float,
    r_min: float,
    planar: bool = False,
    centre: np.ndarray | None = None,
    outward: float = 0.3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random bifurcating tree of straight segments, grown generation by generation.

    starts, dirs: (n, 3) root positions and unit directions; radius: (n,) root radii (mm).
    Each segment has length ~ len_per_radius * radius and splits into a major child (small
    turn, radius x 0.8-0.9) and a minor child (large turn, radius x 0.6-0.75); children are
    pulled ``outward`` away from ``centre``. ``planar`` keeps the tree in the z = 0 plane.
    Returns segment starts (m, 3), ends (m, 3) and radii (m,).
    """
    p0s, p1s, rs = [], [], []
    p, d, r = starts.astype(np.float64), dirs.astype(np.float64), radius.astype(np.float64)
    for _ in range(n_gen):
        if len(r) == 0:
            break
        length = r * len_per_radius * rng.uniform(0.7, 1.3, len(r))
        e = p + d * length[:, None]
        p0s.append(p)
        p1s.append(e)
        rs.append(r)
        n = len(r)
        if planar:
            k = np.tile([0.0, 0.0, 1.0], (n, 1))
        else:
            k = rng.standard_normal((n, 3))
            k -= (k * d).sum(1, keepdims=True) * d
            k /= np.linalg.norm(k, axis=1, keepdims=True) + 1e-12
        kxd = np.cross(k, d)
        a1 = rng.uniform(0.1, 0.4, n)
        a2 = -rng.uniform(0.45, 0.95, n)
        d1 = d * np.cos(a1)[:, None] + kxd * np.sin(a1)[:, None]
        d2 = d * np.cos(a2)[:, None] + kxd * np.sin(a2)[:, None]
        nd = np.concatenate([d1, d2])
        npos = np.concatenate([e, e])
        if centre is not None and outward > 0:
            radial = npos - centre
            if planar:
                radial[:, 2] = 0.0
            radial /= np.linalg.norm(radial, axis=1, keepdims=True) + 1e-9
            nd = nd + outward * radial
            nd /= np.linalg.norm(nd, axis=1, keepdims=True) + 1e-12
        nr = np.concatenate([r * rng.uniform(0.8, 0.9, n), r * rng.uniform(0.6, 0.75, n)])
        keep = nr >= r_min
        p, d, r = npos[keep], nd[keep], nr[keep]
    if not rs:
        z = np.zeros((0, 3))
        return z, z, np.zeros(0)
    return np.concatenate(p0s), np.concatenate(p1s), np.concatenate(rs)


def _sample_segments(
    p0: np.ndarray, p1: np.ndarray, r: np.ndarray, step: float, rng: np.random.Generator | None = None, bow: float = 0.0
):
    """Points every ~``step`` along each segment: positions (N, 3), radii (N,), length per point (N,).

    With ``rng`` and ``bow`` > 0 each segment is bent into a gentle arc (sideways sag up to
    ``bow`` x its length) so that vessels do not look like rods.
    """
    seg = p1 - p0
    length = np.linalg.norm(seg, axis=1)
    n = np.maximum(1, np.ceil(length / step).astype(np.int64))
    idx = np.repeat(np.arange(len(r)), n)
    offs = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    frac = (offs + 0.5) / n[idx]
    pts = p0[idx] + seg[idx] * frac[:, None]
    if rng is not None and bow > 0 and len(r):
        side = rng.standard_normal((len(r), 3))
        side -= (side * seg).sum(1, keepdims=True) * seg / (length[:, None] ** 2 + 1e-9)
        side *= (bow * rng.uniform(-1.0, 1.0, len(r)) * length / (np.linalg.norm(side, axis=1) + 1e-9))[:, None]
        pts = pts + side[idx] * (4.0 * frac * (1.0 - frac))[:, None]
    return pts, r[idx], (length / n)[idx]


def _splat(shape: tuple[int, int, int], z: np.ndarray, row: np.ndarray, col: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Bilinear in-plane splat of weighted points into a (Z, H, W) grid; z is an integer index."""
    Z, H, W = shape
    r0 = np.floor(row).astype(np.int64)
    c0 = np.floor(col).astype(np.int64)
    fr = (row - r0).astype(np.float64)
    fc = (col - c0).astype(np.float64)
    idx_all, w_all = [], []
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            rr, cc = r0 + dr, c0 + dc
            ok = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W) & (z >= 0) & (z < Z)
            idx_all.append((z[ok] * H + rr[ok]) * W + cc[ok])
            w_all.append((w * wr * wc)[ok])
    out = np.bincount(np.concatenate(idx_all), weights=np.concatenate(w_all), minlength=Z * H * W)
    return out.reshape(shape).astype(np.float32)


# --------------------------------------------------------------------------------------------
# CT phantom


@dataclass(frozen=True)
class _Patient:
    """Per-patient anatomy (mm unless said otherwise), drawn once from the rng."""

    A: float  # body half width
    Ba: float  # body half height, anterior of the centre
    Bp: float  # body half height, posterior of the centre
    p_body: float  # superellipse exponent
    harm: tuple[float, float, float, float]  # outline ripple: amplitude, phase for 2nd and 3rd harmonic
    fat: tuple[float, float, float]  # subcutaneous fat: anterior, lateral, posterior
    muscle: tuple[float, float, float]  # muscle: anterior, lateral, posterior
    paraspinal: float  # extra muscle next to the spine
    wall: float  # chest wall (ribs, intercostals)
    fov: float  # field of view
    yc: float  # body centre row (mm from the image centre, + posterior)
    lz: float  # apex-to-base height covered by a volume
    med_w: float  # half width of the mediastinal strip
    heart: float  # heart scale
    heart_x: float
    heart_angle: float
    r_vb: float  # vertebral body radius
    lung_hu: float
    lung_grad: float
    rib_phase: float
    rib_len: np.ndarray  # rib half lengths (per rib index)
    rib_on: np.ndarray  # rib present (per rib index)
    dome_t: float  # t where the right hemidiaphragm dome appears
    fat_hu: float


def _draw_patient(rng: np.random.Generator) -> _Patient:
    A = rng.uniform(140.0, 180.0)
    return _Patient(
        A=A,
        Ba=A * rng.uniform(0.66, 0.76),
        Bp=A * rng.uniform(0.58, 0.66),
        p_body=rng.uniform(2.3, 2.9),
        harm=(rng.uniform(0.0, 0.03), rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.02), rng.uniform(0, 2 * np.pi)),
        fat=(rng.uniform(5.0, 18.0), rng.uniform(6.0, 22.0), rng.uniform(4.0, 12.0)),
        muscle=(rng.uniform(8.0, 14.0), rng.uniform(5.0, 9.0), rng.uniform(7.0, 11.0)),
        paraspinal=rng.uniform(20.0, 28.0),
        wall=rng.uniform(8.5, 10.0),
        fov=2.0 * A * rng.uniform(1.05, 1.12),
        yc=-0.06 * A,
        lz=rng.uniform(230.0, 280.0),
        med_w=rng.uniform(10.0, 16.0),
        heart=rng.uniform(0.85, 1.15),
        heart_x=rng.uniform(22.0, 38.0),
        heart_angle=np.deg2rad(rng.uniform(25.0, 45.0)),
        r_vb=rng.uniform(14.0, 18.0),
        lung_hu=rng.uniform(-885.0, -855.0),
        lung_grad=rng.uniform(25.0, 55.0),
        rib_phase=rng.uniform(0.0, 1.0),
        rib_len=rng.uniform(5.0, 11.0, 64).astype(np.float32),
        rib_on=rng.uniform(0.0, 1.0, 64) < 0.95,
        dome_t=rng.uniform(0.70, 0.78),
        fat_hu=HU_FAT + rng.uniform(-10.0, 15.0),
    )


def _circle(x, y, cx, cy, r):
    """Inside-disc mask; cx, cy, r broadcast against (Z, 1, 1) for per-slice structures."""
    return (x - cx) ** 2 + (y - cy) ** 2 < r**2


def _inside_ellipse(x, y, cx, cy, ax, ay):
    """Inside an axis-aligned ellipse; semi-axes <= 0 (per slice) mean absent."""
    return (((x - cx) / np.maximum(ax, 1e-3)) ** 2 + ((y - cy) / np.maximum(ay, 1e-3)) ** 2 < 1) & (ax > 0) & (ay > 0)


def _ct_render(
    size: int, t: np.ndarray, rng: np.random.Generator, infection: str, slice_mm: float | None = None
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Render slices at heights ``t`` (apex 0 .. base 1).

    ``slice_mm`` None: the slices share the patient's apex-to-base range evenly. Returns HU
    (Z, H, W) float32, labels (Z, H, W) uint8, pixel mm, slice mm.
    """
    pt = _draw_patient(rng)
    if slice_mm is None:
        slice_mm = round(pt.lz * float(t.max() - t.min()) / max(1, len(t) - 1), 3) if len(t) > 1 else 5.0
    Z, H, W = len(t), size, size
    px = round(pt.fov / size, 4)
    fov = px * size
    tz = t.reshape(Z, 1, 1).astype(np.float32)
    zmm = (t * pt.lz).astype(np.float64)  # mm below the apex
    x = ((np.arange(W, dtype=np.float32) + 0.5) - W / 2) * px
    y = ((np.arange(H, dtype=np.float32) + 0.5) - H / 2) * px
    x = x.reshape(1, 1, W)
    y = y.reshape(1, H, 1)
    dy = y - pt.yc
    ax_ = np.abs(x)

    # ---- body outline: superellipse, wider than tall, flatter back; radial depth below skin
    r = np.sqrt(x**2 + dy**2)
    rs = np.maximum(r, 1e-3)
    cth, sth = x / rs, dy / rs  # sth > 0 posterior
    theta = np.arctan2(dy, x)
    ripple = 1.0 + pt.harm[0] * np.cos(2 * theta + pt.harm[1]) + pt.harm[2] * np.cos(3 * theta + pt.harm[3])
    A_t = pt.A * (0.94 + 0.07 * tz)
    B_t = np.where(dy < 0, pt.Ba * (0.95 + 0.06 * tz), pt.Bp * (0.96 + 0.05 * tz))
    p = pt.p_body
    ca, sa = np.abs(cth) ** p, np.abs(sth) ** p
    R = 1.0 / ((ca / A_t**p + sa / B_t**p) ** (1.0 / p) * ripple)
    depth = (R - r).astype(np.float32)  # mm inside the skin along the ray from the centre
    body = depth > 0

    # layer thicknesses as functions of the direction only (2-D maps)
    c2, s2 = sth**2, cth**2
    ant, post = (sth < 0), (sth >= 0)
    fat = pt.fat[1] * s2 + c2 * np.where(ant, pt.fat[0], pt.fat[2])
    mus = pt.muscle[1] * s2 + c2 * np.where(ant, pt.muscle[0], pt.muscle[2])
    mus = mus + post * pt.paraspinal * np.exp(-((x / 42.0) ** 2)) * sth
    mus = mus * (1.0 - 0.85 * ant * np.exp(-((x / 25.0) ** 2)))  # no pectoralis over the sternum
    d_skin = 2.0
    d_fat = d_skin + fat
    d_mus = d_fat + mus
    d_wall = d_mus + pt.wall
    dc = depth - d_wall  # depth inside the thoracic cavity
    cavity = dc > 0

    hu = np.full((Z, H, W), HU_AIR, dtype=np.float32)
    tex = _noise_fields(rng, 3, (Z, H, W), (max(0.3, 8.0 / slice_mm), 6.0 / px, 6.0 / px))

    # ---- couch below the back
    yb = pt.yc + pt.Bp * 1.01 + 4.0
    ytop = yb - 0.0009 * x**2
    couch = ((y > ytop) & (y < ytop + 4.0)) | ((y > ytop + 30.0) & (y < ytop + 34.0))
    couch = couch & (ax_ < 0.40 * fov)
    hu = np.where(couch, np.float32(-200.0), hu)
    hu = np.where(couch & (y < ytop + 4.0) & (ax_ < 0.38 * fov), np.float32(150.0), hu)

    # ---- skin, fat, muscle, chest wall
    hu = np.where(body, np.float32(25.0), hu)
    hu = np.where(depth > d_skin, pt.fat_hu + 8.0 * tex[0], hu)
    muscle = depth > d_fat
    hu = np.where(muscle, HU_SOFT + 8.0 * tex[1], hu)
    fat_plane = np.abs(depth - (d_fat + 0.45 * mus)) < 1.3
    hu = np.where(fat_plane & ant & (np.abs(x) > 30) & (tex[2] > -0.4), pt.fat_hu, hu)

    # scapulae (upper chest, posterolateral, inside the muscle)
    phi = np.arctan2(ax_, dy)  # 0 posterior .. pi anterior
    scap = (np.abs(depth - (d_fat + 0.55 * mus + 2)) < 2.5) & (phi > 0.45) & (phi < 1.15) & (tz < 0.55)
    hu = np.where(scap, np.float32(650.0), hu)

    # ribs: oval sections in the wall band, spaced along the angle, drifting with height
    period = np.pi / 7.5
    psi = (phi - 0.3) / period + pt.rib_phase + 2.2 * tz
    j = np.floor(psi)
    f = psi - j - 0.5
    side = (x > 0).astype(np.int64)
    jidx = (j.astype(np.int64) + 21 * side) % len(pt.rib_len)
    half_len = pt.rib_len[jidx]
    d_rc = d_mus + pt.wall * 0.5
    q_rib = ((depth - d_rc) / 3.6) ** 2 + (f * period * r / half_len) ** 2
    rib_zone = (phi > 0.35) & (phi < 2.75) & pt.rib_on[jidx] & (q_rib < 1.0)
    cartilage = phi > 2.25
    rib_hu = np.where(q_rib > 0.45, HU_BONE_CORTEX, HU_BONE_MARROW + 40 * tex[2])
    hu = np.where(rib_zone, np.where(cartilage, HU_CARTILAGE, rib_hu), hu)

    # ---- thoracic cavity: soft tissue by default (mediastinal fat, organs and lungs come later)
    hu = np.where(cavity, HU_SOFT + 6 * tex[1], hu)

    # spine: vertebral body, canal, arch, spinous and transverse processes
    y_back = pt.yc + pt.Bp * (0.96 + 0.05 * tz)
    y_can = y_back - (d_skin + pt.fat[2] + pt.muscle[2] + 0.85 * pt.paraspinal)
    r_can = 7.5
    rvb = pt.r_vb * (0.9 + 0.2 * tz)
    y_vb = y_can - r_can - 4.0 - rvb * 0.85
    vb_q = (x / (rvb * 1.1)) ** 2 + ((y - y_vb) / (rvb * 0.9)) ** 2
    arch = _circle(x, y, 0.0, y_can, r_can + 5.0) & (y > y_vb)
    spinous = ((x / 3.5) ** 2 + ((y - (y_can + r_can + 14.0)) / 14.0) ** 2) < 1
    transverse = (((ax_ - (r_can + 13.0)) / 13.0) ** 2 + ((y - (y_can + 2.0 + 0.1 * (ax_ - r_can))) / 4.0) ** 2) < 1
    posterior_el = arch | spinous | transverse
    hu = np.where(posterior_el, np.float32(700.0), hu)
    hu = np.where(_circle(x, y, 0.0, y_can, r_can), np.float32(20.0), hu)
    hu = np.where(vb_q < 1.0, np.where(vb_q > 0.72, HU_BONE_CORTEX, HU_BONE_MARROW + 40 * tex[2]), hu)

    # sternum (anterior, subcutaneous)
    y_front = pt.yc - pt.Ba * (0.95 + 0.06 * tz)
    ster_on = (tz > 0.08) & (tz < 0.85)
    y_st = y_front + d_skin + pt.fat[0] + 7.0
    st_q = (x / 15.0) ** 2 + ((y - y_st) / 6.5) ** 2
    hu = np.where(ster_on & (st_q < 1), np.where(st_q > 0.5, np.float32(750.0), HU_BONE_MARROW), hu)

    # ---- mediastinal structures (centres and radii per slice; radius 0 = absent)
    y_ant_cav = y_front + d_skin + pt.fat[0] + 0.15 * pt.muscle[0] + pt.wall + 14.0  # behind the sternum
    tt = tz
    g = 0.25 + 0.75 * np.sqrt(_smoothstep(tt / 0.4))  # lungs grow from the apex down (dome-shaped)

    def on(lo, hi):
        return ((tt >= lo) & (tt <= hi)).astype(np.float32)

    # oesophagus and trachea / main bronchi, in front of the spine
    y_oes = y_vb - rvb * 0.9 - 7.0
    r_tr = 9.5
    y_tr = y_oes - 7.0 - r_tr - 2.0
    carina = 0.38
    spread = np.clip((tt - carina) / 0.15, 0, 1)
    bx = 7.0 + 30.0 * spread + 6.0 * np.clip((tt - 0.53) / 0.1, 0, 1)
    tr_on = on(0.0, carina)
    br_on = on(carina, 0.64)
    r_br = 6.2 - 2.0 * np.clip((tt - 0.5) / 0.14, 0, 1)  # main, then intermediate / lobar bronchi
    by_ = y_tr + 6.0 * spread

    # aorta: descending (left of the spine), arch, ascending; SVC; great vessels
    desc_x, desc_y = rvb * 0.6 + 12.0, y_vb - rvb * 0.7
    asc_x, asc_y = -8.0, y_ant_cav + 30.0
    r_ao = 12.0
    structs = []  # (mask, HU)
    structs.append((_circle(x, y, 0.0 * tt + 4.0, y_oes, 7.0 * on(0.0, 0.9)), HU_SOFT))
    structs.append((_circle(x, y, desc_x, desc_y, r_ao * on(0.27, 1.0)), HU_BLOOD))
    structs.append((_circle(x, y, asc_x, asc_y, (r_ao + 2.5) * on(0.33, 0.56)), HU_BLOOD))
    # aortic arch: capsule from ascending to descending position
    arch_on = on(0.27, 0.33)
    vx, vy = desc_x - asc_x, desc_y - asc_y
    sproj = np.clip(((x - asc_x) * vx + (y - asc_y) * vy) / (vx**2 + vy**2), 0, 1)
    d_arch = np.sqrt((x - asc_x - sproj * vx) ** 2 + (y - asc_y - sproj * vy) ** 2)
    structs.append((d_arch < r_ao * arch_on, HU_BLOOD))
    structs.append((_circle(x, y, -28.0, y_ant_cav + 32.0, 9.5 * on(0.12, 0.56)), HU_BLOOD))  # SVC
    structs.append((_circle(x, y, 16.0, y_ant_cav + 26.0, 13.0 * on(0.42, 0.55)), HU_BLOOD))  # pulmonary trunk
    for gx, gy, gr in ((-12.0, 40.0, 7.0), (6.0, 46.0, 5.0), (20.0, 58.0, 6.0)):  # great vessels
        structs.append((_circle(x, y, gx, y_ant_cav + gy, gr * on(0.0, 0.27)), HU_BLOOD))

    # heart: rotated ellipse, left-anterior, growing then shrinking towards the base
    hs = pt.heart * np.sqrt(np.clip(1.0 - ((tt - 0.70) / 0.26) ** 2, 0.0, 1.0))
    ha, hb = 56.0 * hs, 40.0 * hs
    hx = pt.heart_x
    hy = y_ant_cav + np.maximum(hb, 1.0) * 0.95 + 4.0
    ca_, sa_ = np.cos(pt.heart_angle), np.sin(pt.heart_angle)
    hu_ = (x - hx) * ca_ - (y - hy) * sa_
    hv_ = (x - hx) * sa_ + (y - hy) * ca_
    heart_q = (hu_ / np.maximum(ha, 1e-3)) ** 2 + (hv_ / np.maximum(hb, 1e-3)) ** 2
    heart_on = hs > 0.05
    heart_fat = heart_on & (heart_q < 1.0)
    heart_core = heart_on & ((hu_ / np.maximum(ha - 4, 1e-3)) ** 2 + (hv_ / np.maximum(hb - 4, 1e-3)) ** 2 < 1.0)

    # diaphragm domes at the base: liver (right), stomach and spleen (left)
    g_l = np.sqrt(np.clip((tt - pt.dome_t) / (1.0 - pt.dome_t + 0.08), 0, 1))
    g_s = np.sqrt(np.clip((tt - pt.dome_t - 0.05) / (1.0 - pt.dome_t + 0.03), 0, 1))
    cav_half = pt.A - pt.fat[1] - pt.muscle[1] - pt.wall
    liver = _inside_ellipse(x, y, -0.3 * cav_half, pt.yc - 0.1 * pt.Bp, 0.85 * cav_half * g_l, 0.95 * pt.Bp * g_l)
    st_cy, st_ry = pt.yc - 0.25 * pt.Bp, 0.5 * pt.Bp * g_s + 1e-3
    stomach = _inside_ellipse(x, y, 0.4 * cav_half, st_cy, 0.5 * cav_half * g_s, st_ry)
    spleen = _inside_ellipse(x, y, 0.62 * cav_half, pt.yc + 0.45 * pt.Bp, 0.3 * cav_half * g_s, 0.3 * pt.Bp * g_s)
    gas_level = st_cy - 0.35 * st_ry  # gas in the anterior (non-dependent) third of the stomach
    abdo = cavity & (liver | stomach | spleen)
    hu = np.where(abdo & liver, HU_LIVER + 6 * tex[1], hu)
    hu = np.where(abdo & spleen & ~liver, np.float32(50.0) + 6 * tex[1], hu)
    st_in = abdo & stomach & ~liver & ~spleen
    st_core = ((x - 0.4 * cav_half) / (0.5 * cav_half * g_s - 4.0 + 1e-3)) ** 2 + ((y - st_cy) / (st_ry - 4.0)) ** 2 < 1
    st_core &= g_s * 0.5 * cav_half > 8.0
    hu = np.where(st_in, np.where(st_core & (y < gas_level), HU_AIR + 30, np.float32(25.0)), hu)

    # paint mediastinum: fat around the structures, in a rounded region between spine and sternum
    y_mc = 0.5 * (y_ant_cav + y_vb)
    med_fat = ((x - 4.0) / (26.0 + 24.0 * g)) ** 2 + (
        (y - y_mc) / ((0.5 * (y_vb - y_ant_cav) + 8.0) * (0.4 + 0.6 * g))
    ) ** 2 < 1
    hu = np.where(med_fat & cavity & ~abdo, pt.fat_hu + 8.0 * tex[0], hu)
    for m, val in structs:
        hu = np.where(m & cavity, np.float32(val), hu)
    hu = np.where(heart_fat & cavity, pt.fat_hu, hu)
    hu = np.where(heart_core & cavity, HU_BLOOD + 4 * tex[2], hu)
    tr_out = _circle(x, y, 0.0, y_tr, (r_tr + 1.5) * tr_on)
    tr_in = _circle(x, y, 0.0, y_tr, r_tr * tr_on)
    br_out = _circle(ax_, y, bx, by_, (r_br + 1.8) * br_on)
    br_in = _circle(ax_, y, bx, by_, r_br * br_on)
    hu = np.where(tr_out | br_out, np.float32(HU_SOFT), hu)
    hu = np.where(tr_in | br_in, np.float32(HU_AIR + 20), hu)

    # ---- lungs: allowed region, minus exclusions, smoothed to bean shapes
    lcx = pt.A * 0.46 * (0.8 + 0.2 * g)
    lcy = pt.yc + 0.12 * pt.Bp + 0.35 * pt.Bp * (1 - g)
    lax = pt.A * 0.62 * g
    lay = 0.98 * (pt.Ba + pt.Bp) * 0.5 * g
    lung_ell = ((ax_ - lcx) / lax) ** 2 + ((y - lcy) / lay) ** 2 < 1
    allowed = (dc > 1.5) & lung_ell & (ax_ > pt.med_w)
    excl = (vb_q < 1.9) | posterior_el | heart_fat | abdo | tr_out | br_out
    excl |= _circle(x, y, 0.0, y_vb, rvb + 8.0) | (ax_ < rvb + 6.0) & (y > y_vb)
    for m, _ in structs:
        excl |= m
    allowed &= ~excl
    # dilation of exclusions + rounding, in one blur: threshold above 0.5 shrinks the shape
    sig = 5.0 / px
    lung_soft = ndi.gaussian_filter(allowed.astype(np.float32), (0, sig, sig), truncate=3.0)
    lung = lung_soft > 0.6
    lung &= ~excl

    # parenchyma: base HU, gravity gradient (posterior denser), low-frequency texture
    y_rel = np.clip((y - lcy) / np.maximum(lay, 1.0), -1.0, 1.0)
    paren = pt.lung_hu + pt.lung_grad * y_rel + 10.0 * tex[1]

    # ---- vessels: random trees from each hilum, rendered as tubes, kept inside the lungs
    vess_big, vess = _ct_vessels(rng, pt, lung, x, y, zmm, slice_mm, px, (Z, H, W), y_vb, rvb, y_ant_cav)
    vess = vess * lung

    # ---- lesions
    label = np.where(lung, np.uint8(LUNG), np.uint8(BACKGROUND)).astype(np.uint8)
    lung_hu = paren.astype(np.float32)
    if infection != "none" and lung.any():
        ggo_soft, cons_soft, ggo_mask, cons_mask = _ct_lesions(
            rng, pt, lung, x, y, zmm, slice_mm, px, dc, infection, (Z, H, W)
        )
        ggo_hu = rng.uniform(-650.0, -540.0)
        lung_hu = lung_hu + ggo_soft * (ggo_hu + 35.0 * tex[2] - lung_hu)
        lung_hu = lung_hu + vess * (HU_BLOOD - lung_hu)
        if cons_mask is not None:
            cons_hu = rng.uniform(-40.0, 25.0)
            bronchogram = np.clip(vess_big * 1.5, 0, 1) * 0.5  # air bronchograms
            target = cons_hu + 8.0 * tex[0]
            target = target + bronchogram * (HU_AIR + 150.0 - target)
            lung_hu = lung_hu + cons_soft * (target - lung_hu)
        label[ggo_mask] = GGO
        if cons_mask is not None:
            label[cons_mask] = CONSOLIDATION
    else:
        lung_hu = lung_hu + vess * (HU_BLOOD - lung_hu)
    hu = np.where(lung, lung_hu, hu)

    # ---- acquisition: slight blur, correlated Gaussian noise
    # blur(hu + k * white) = blurred image + correlated noise; k makes the noise std sigma_n
    sigma_n = rng.uniform(10.0, 18.0)
    kern = ndi.gaussian_filter1d(np.eye(1, 15, 7, dtype=np.float64)[0], 0.6, truncate=3.0)
    k_white = sigma_n / float(np.sqrt((kern**2).sum()) ** 2)
    hu += rng.standard_normal((Z, H, W), dtype=np.float32) * np.float32(k_white)
    hu = ndi.gaussian_filter(hu, (0, 0.6, 0.6), truncate=3.0)
    np.clip(hu, HU_MIN, HU_MAX, out=hu)
    return hu.astype(np.float32), label, px, slice_mm


def _ct_vessels(rng, pt: _Patient, lung, x, y, zmm, slice_mm, px, shape, y_vb, rvb, y_ant_cav):
    """Pulmonary vessel trees; returns (large-vessel field, all-vessel field), (Z, H, W) in [0, 1).

    Large trees grow from each hilum (thick, few); small subtrees seeded throughout the lung
    point away from the hilum and thin out with distance from it, so vessels are dense and
    thick centrally and fine in the periphery.
    """
    Z, H, W = shape
    y_hil = 0.5 * (float(np.mean(y_vb)) - float(np.mean(rvb)) + float(np.mean(y_ant_cav)))
    z_hil = 0.45 * pt.lz
    hila = {-1.0: np.array([-(pt.med_w + 28.0), y_hil, z_hil]), 1.0: np.array([pt.med_w + 36.0, y_hil, z_hil])}
    starts, dirs, radii = [], [], []
    for sgn, hil in hila.items():
        n = 8
        st = hil + rng.normal(0, 1, (n, 3)) * np.array([3.0, 8.0, 14.0])
        dvec = rng.standard_normal((n, 3))
        dvec[:, 0] = sgn * (np.abs(dvec[:, 0]) * 0.8 + 0.4)
        dvec[:, 1] *= 0.8
        dvec[:, 2] *= 1.8
        starts.append(st)
        dirs.append(dvec / np.linalg.norm(dvec, axis=1, keepdims=True))
        radii.append(rng.uniform(3.5, 5.5, n))
    p0a, p1a, ra = _grow_tree(
        rng,
        np.concatenate(starts),
        np.concatenate(dirs),
        np.concatenate(radii),
        n_gen=6,
        len_per_radius=8.0,
        r_min=1.5,
        centre=np.array([0.0, y_hil, z_hil]),
        outward=0.3,
    )
    # peripheral subtrees, seeded at random lung voxels (jittered between slices)
    dz_grid = float(abs(zmm[1] - zmm[0])) if Z > 1 else slice_mm
    t_eff = float(np.clip(slice_mm * 0.25, 1.5, 3.0))  # effective slice thickness for vessel rendering
    lung_idx = np.flatnonzero(lung.ravel())
    p0b = p1b = np.zeros((0, 3))
    rb_ = np.zeros(0)
    if len(lung_idx):
        # Only vessels near a slice plane are ever seen, so seeds go into a slab around each
        # slice (the whole gap when slices are thin), at a fixed density per mm^3 of lung.
        zext = min(dz_grid, t_eff + 10.0) if Z > 1 else t_eff + 10.0
        vol = len(lung_idx) * px * px * zext
        n_seed = int(min(8000, max(4, vol / 5000.0)))
        k = lung_idx[rng.integers(0, len(lung_idx), n_seed)]
        kz, kr, kc = np.unravel_index(k, shape)
        seeds = np.column_stack(
            [
                x.ravel()[kc] + rng.uniform(-0.5, 0.5, n_seed) * px,
                y.ravel()[kr] + rng.uniform(-0.5, 0.5, n_seed) * px,
                zmm[kz] + rng.uniform(-0.5, 0.5, n_seed) * zext,
            ]
        )
        sgn = np.where(seeds[:, 0] < 0, -1.0, 1.0)
        hil = np.where(sgn[:, None] < 0, hila[-1.0], hila[1.0])
        away = seeds - hil
        dist = np.linalg.norm(away, axis=1)
        dvec = away / (dist[:, None] + 1e-9) + rng.normal(0, 0.6, (n_seed, 3))
        dvec[:, 2] *= 1.6  # more vessels run cranio-caudally: dots in axial slices
        dvec /= np.linalg.norm(dvec, axis=1, keepdims=True)
        r0 = np.clip(2.4 * np.exp(-dist / 130.0), 1.0, 2.0) * rng.uniform(0.8, 1.2, n_seed)
        # start a little upstream so the subtree passes through the seed
        st = seeds - dvec * (r0 * 4.0)[:, None]
        p0b, p1b, rb_ = _grow_tree(rng, st, dvec, r0, n_gen=4, len_per_radius=6.5, r_min=0.45)
    p0 = np.concatenate([p0a, p0b])
    p1 = np.concatenate([p1a, p1b])
    r = np.concatenate([ra, rb_])
    step = min(0.5 * px, 1.0)
    pts, rad, wlen = _sample_segments(p0, p1, r, step, rng, bow=0.12)
    x0 = float(x.ravel()[0])
    y0 = float(y.ravel()[0])
    col = (pts[:, 0] - x0) / px
    row = (pts[:, 1] - y0) / px
    if Z > 1:
        dz_slice = float(zmm[1] - zmm[0])
        kf = (pts[:, 2] - zmm[0]) / dz_slice
    else:
        dz_slice = slice_mm
        kf = (pts[:, 2] - zmm[0]) / dz_slice
    dzs = abs(dz_slice)
    edges = (0.0, 1.0, 1.8, 3.0, np.inf)
    total = np.zeros(shape, np.float32)
    big = np.zeros(shape, np.float32)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (rad >= lo) & (rad < hi)
        if not sel.any():
            continue
        rb = float(np.median(rad[sel]))
        m = int(np.ceil((t_eff / 2 + rb + 1.5) / dzs)) + 1
        kc = np.round(kf[sel]).astype(np.int64)
        zs, rows, cols, ws = [], [], [], []
        for o in range(-m, m + 1):
            k = kc + o
            dz = (kf[sel] - k) * dzs
            wz = np.clip((t_eff / 2 + rad[sel] - np.abs(dz)) / 2.5 + 0.5, 0.0, 1.0)
            ok = wz > 0
            zs.append(k[ok])
            rows.append(row[sel][ok])
            cols.append(col[sel][ok])
            ws.append((wz * wlen[sel] / px)[ok])
        if not zs or sum(len(a) for a in zs) == 0:
            continue
        acc = _splat(shape, np.concatenate(zs), np.concatenate(rows), np.concatenate(cols), np.concatenate(ws))
        sig = max(0.5 * rb / px, 0.5)
        acc = ndi.gaussian_filter(acc, (0, sig, sig), truncate=3.0) * (np.sqrt(2 * np.pi) * sig)
        amp = float(np.clip(rb / 2.0, 0.4, 1.0)) * min(1.0, 1.5 * rb / px)  # partial volume
        total += amp * acc
        if lo >= 1.8:
            big += amp * acc
    # steep saturation: vessels get a plateau and a fairly sharp wall
    return 1.0 - np.exp(-((2.0 * big) ** 2)), 1.0 - np.exp(-((2.0 * total) ** 2))


def _ct_lesions(rng, pt: _Patient, lung, x, y, zmm, slice_mm, px, dc, infection, shape):
    """3-D GGO (and consolidation) blobs, peripheral / posterior / basal, clipped to the lung.

    Returns (ggo_soft, cons_soft, ggo_mask, cons_mask): soft fields in [0, 1] weighting the
    HU change and the hard label masks (threshold at the half-intensity level).
    """
    Z, H, W = shape
    nf = _noise_fields(rng, 2, shape, (max(0.3, 6.0 / slice_mm), 5.0 / px, 5.0 / px))
    zz = zmm.reshape(Z, 1, 1)
    t = (zz / pt.lz).astype(np.float32)
    # where lesions like to be: subpleural, posterior, lower zones
    w = np.exp(-np.clip(dc, 0, None) / 18.0) * (1.0 + 2.0 * np.clip((y - pt.yc) / pt.Bp, 0, 1)) * (0.5 + t)
    w = np.broadcast_to(w, shape)
    n_ggo = int(rng.integers(3, 9))
    zjit = float(abs(zmm[1] - zmm[0])) if Z > 1 else 40.0  # a single slice cuts blobs off-centre too
    centres = []
    for sgn_i in range(n_ggo):
        side = (x < 0) if sgn_i % 2 == 0 else (x > 0)
        cand = np.flatnonzero((lung & side).ravel())
        if len(cand) == 0:
            cand = np.flatnonzero(lung.ravel())
        ww = w.ravel()[cand].astype(np.float64)
        k = cand[rng.choice(len(cand), p=ww / ww.sum())]
        kz, kr, kc = np.unravel_index(k, shape)
        centres.append((float(x.ravel()[kc]), float(y.ravel()[kr]), float(zmm[kz]) + rng.uniform(-0.5, 0.5) * zjit))
    # slice spacing of the grid (thick slices get taller blobs so each spans >= 2 slices)
    dzs = float(abs(zmm[1] - zmm[0])) if Z > 1 else slice_mm
    G = np.zeros(shape, np.float32)
    C = np.zeros(shape, np.float32)
    n_cons = int(rng.integers(1, max(2, n_ggo // 2) + 1)) if infection == "mixed" else 0
    cons_of = set(rng.choice(n_ggo, size=n_cons, replace=False).tolist()) if n_cons else set()
    xs, ys = x.ravel(), y.ravel()

    def blob(field, cx, cy, cz, a, b, rz, ang):
        ext = 1.8 * max(a, b)
        c0, c1 = np.searchsorted(xs, [cx - ext, cx + ext])
        r0, r1 = np.searchsorted(ys, [cy - ext, cy + ext])
        zsel = np.flatnonzero(np.abs(zmm - cz) < 1.8 * rz)
        if c1 <= c0 or r1 <= r0 or len(zsel) == 0:
            return
        z0, z1 = zsel[0], zsel[-1] + 1
        X = xs[c0:c1].reshape(1, 1, -1) - cx
        Y = ys[r0:r1].reshape(1, -1, 1) - cy
        Zd = (zmm[z0:z1].reshape(-1, 1, 1) - cz).astype(np.float32)
        u = X * np.cos(ang) + Y * np.sin(ang)
        v = -X * np.sin(ang) + Y * np.cos(ang)
        q = (u / a) ** 2 + (v / b) ** 2 + (Zd / rz) ** 2
        sub = field[z0:z1, r0:r1, c0:c1]
        np.maximum(sub, np.exp(-0.693 * q).astype(np.float32), out=sub)

    for i, (cx, cy, cz) in enumerate(centres):
        a = rng.uniform(18.0, 45.0)
        b = a * rng.uniform(0.5, 0.9)
        rz = float(np.clip(max(rng.uniform(15.0, 35.0), 1.15 * dzs), 0, 70.0))
        tang = np.arctan2(cy - pt.yc, cx) + np.pi / 2  # long axis along the pleura
        blob(G, cx, cy, cz, a, b, rz, tang + rng.normal(0, 0.3))
        if rng.uniform() < 0.5:  # satellite patch
            blob(
                G,
                cx + rng.normal(0, a * 0.7),
                cy + rng.normal(0, a * 0.5),
                cz + rng.normal(0, rz * 0.4),
                a * 0.6,
                b * 0.7,
                rz * 0.8,
                tang,
            )
        if i in cons_of:
            # denser core, shifted towards the chest wall / posterior
            rr = np.hypot(cx, cy - pt.yc) + 1e-6
            sh = rng.uniform(0.0, 0.25) * a
            ccx, ccy = cx + sh * cx / rr, cy + sh * (cy - pt.yc) / rr
            blob(
                C, ccx, ccy, cz, a * rng.uniform(0.4, 0.7), b * rng.uniform(0.45, 0.8), max(rz * 0.6, 1.05 * dzs), tang
            )
    Gm = G * (1.0 + 0.45 * nf[0])
    ggo_soft = _smoothstep((Gm - 0.3) / 0.4) * lung
    ggo_mask = (Gm > 0.5) & lung
    cons_soft = cons_mask = None
    if n_cons:
        Cm = C * (1.0 + 0.3 * nf[1])
        cons_soft = _smoothstep((Cm - 0.36) / 0.22) * lung
        cons_mask = (Cm > 0.5) & lung
    return ggo_soft, cons_soft, ggo_mask, cons_mask


def _volume_t(n_slices: int) -> np.ndarray:
    """Heights t (0 apex .. 1 base) of the slices, slice 0 most inferior."""
    k = np.arange(n_slices, dtype=np.float64)
    t = 0.03 + 0.94 * (k + 0.5) / n_slices
    return t[::-1].copy()


def ct_phantom_volume(size: int = 256, n_slices: int = 16, seed: int = 0, infection: str = "mixed") -> CTPhantom:
    """A seeded chest CT phantom volume from lung base (slice 0) to apex (slice Z-1).

    Returns ``CTPhantom`` with image_hu (n_slices, size, size) float32 HU in [-1024, 3071],
    label (n_slices, size, size) uint8 in {0, 1, 2, 3} and spacing (row, col, slice) in mm.
    ``infection``: "none", "ggo" (ground glass only) or "mixed" (GGO and consolidation).
    """
    size = _check_size(size)
    n_slices = _check_positive("n_slices", n_slices)
    infection = _check_infection(infection)
    rng = np.random.default_rng(seed)
    hu, label, px, slice_mm = _ct_render(size, _volume_t(n_slices), rng, infection)
    return CTPhantom(image_hu=hu, label=label, spacing=(px, px, slice_mm))


def ct_phantom_slice(size: int = 256, seed: int = 0, infection: str = "mixed") -> tuple[np.ndarray, np.ndarray]:
    """One mid-chest axial slice (main bronchi, heart, aorta): (H, W) float32 HU, (H, W) uint8 labels."""
    size = _check_size(size)
    infection = _check_infection(infection)
    rng = np.random.default_rng(seed)
    hu, label, _, _ = _ct_render(size, np.array([MID_CHEST_T]), rng, infection, slice_mm=5.0)
    return hu[0], label[0]


# --------------------------------------------------------------------------------------------
# chest X-ray phantom


def _check_klass(klass: str) -> str:
    if klass not in CXR_CLASSES:
        raise ValueError(f"klass must be one of {CXR_CLASSES}, got {klass!r}")
    return klass


def _curve_field(size: int, curves: list[np.ndarray], sigma_px: float) -> np.ndarray:
    """Tube profile (peak ~1) along polylines given in normalised (u, v) coordinates."""
    acc = np.zeros((1, size, size), np.float32)
    pts, ws = [], []
    for c in curves:
        seg = np.diff(c, axis=0)
        seglen = np.linalg.norm(seg, axis=1) * size / 2.0  # px
        n = np.maximum(1, np.ceil(seglen / 0.5).astype(np.int64))
        idx = np.repeat(np.arange(len(seg)), n)
        offs = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        frac = (offs + 0.5) / n[idx]
        pts.append(c[:-1][idx] + seg[idx] * frac[:, None])
        ws.append((seglen / n)[idx])
    if not pts:
        return acc[0]
    p = np.concatenate(pts)
    w = np.concatenate(ws)
    col = (p[:, 0] + 1.0) * size / 2.0 - 0.5
    row = (p[:, 1] + 1.0) * size / 2.0 - 0.5
    acc = _splat((1, size, size), np.zeros(len(p), np.int64), row, col, w)[0]
    return ndi.gaussian_filter(acc, sigma_px) * (np.sqrt(2.0 * np.pi) * sigma_px)


def _cxr_render(size: int, klass: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """PA chest radiograph phantom: (H, W) uint8 image and the (H, W) bool lung-field mask."""
    n = size
    # patient / positioning
    sc = rng.uniform(0.93, 1.04)
    du, dv = rng.normal(0.0, 0.02, 2)
    rot = np.deg2rad(rng.normal(0.0, 1.5))
    c = (np.arange(n, dtype=np.float32) + 0.5) / n * 2.0 - 1.0
    U0, V0 = np.meshgrid(c, c)
    U = ((U0 - du) * np.cos(rot) + (V0 - dv) * np.sin(rot)) / sc
    V = (-(U0 - du) * np.sin(rot) + (V0 - dv) * np.cos(rot)) / sc
    S = np.abs(U)
    right = U < 0  # patient's right is image left
    px_norm = 2.0 / n  # one pixel in normalised units

    # ---- body soft tissue: neck, sloping shoulders, torso (projected thickness of a cylinder)
    nw = rng.uniform(0.19, 0.25)
    tw = rng.uniform(0.9, 1.05)
    v_sh = rng.uniform(-0.8, -0.7)
    w_v = nw + (tw - nw) * _smoothstep((V - (v_sh - 0.28)) / 0.3)
    w_v = w_v + 0.12 * _smoothstep((V - v_sh) / 0.25)  # arms / shoulders reach out
    body_t = np.sqrt(np.clip(1.0 - (U / w_v) ** 2, 0.0, 1.0))
    D = 0.04 + 0.60 * body_t**0.7

    # ---- lungs: sloping apex cap, lateral wall, hemidiaphragm dome; mediastinum and heart cut out
    v_ap = rng.uniform(-0.80, -0.72)
    lat = rng.uniform(0.74, 0.84)
    med = rng.uniform(0.07, 0.1)
    dome_r = rng.uniform(0.36, 0.48)
    dome_l = dome_r + rng.uniform(0.02, 0.07)
    dome = np.where(right, dome_r, dome_l)
    s_ap = rng.uniform(0.26, 0.34)
    top = v_ap + 1.1 * ((S - s_ap) / lat) ** 2
    lat_v = lat - 0.06 * ((V - 0.25) / 0.9) ** 2
    s_pk = rng.uniform(0.3, 0.42)
    dome_curve = np.where(
        S > s_pk, dome + 0.24 * ((S - s_pk) / (lat - s_pk)) ** 2, dome + 0.16 * ((s_pk - S) / s_pk) ** 2
    )
    lung = (V > top) & (S < lat_v) & (V < dome_curve) & (S > med)
    # heart: rotated ellipse, bulging to the patient's left (image right), sitting on the diaphragm
    hw = rng.uniform(0.26, 0.34)
    hh = rng.uniform(0.2, 0.25)
    hx = rng.uniform(0.08, 0.13)
    hy = dome_r - 0.45 * hh
    ha = np.deg2rad(rng.uniform(10.0, 25.0))
    hu_ = (U - hx) * np.cos(ha) + (V - hy) * np.sin(ha)
    hv_ = -(U - hx) * np.sin(ha) + (V - hy) * np.cos(ha)
    heart = (hu_ / hw) ** 2 + (hv_ / hh) ** 2 < 1.0
    knob = (U - rng.uniform(0.1, 0.14)) ** 2 + ((V + rng.uniform(0.28, 0.34)) / 1.2) ** 2 < rng.uniform(
        0.045, 0.06
    ) ** 2
    upper_med = (S < med + 0.05 * _smoothstep((V + 0.5) / 0.3)) & (V > -0.62)
    lung &= ~heart & ~knob & ~upper_med
    lung_soft = ndi.gaussian_filter(lung.astype(np.float32), max(0.5, 0.009 * n))
    # air path is longest in the middle of each lung and shorter at the edges and bases
    depth = ndi.gaussian_filter(lung.astype(np.float32), 0.06 * n)
    air = lung_soft * (0.5 + 0.5 * depth) * (1.0 - 0.25 * _smoothstep((V + 0.1) / 0.6))
    D -= 0.46 * air

    # trachea and main bronchi (air column), gastric bubble under the left dome
    tr_w = rng.uniform(0.03, 0.04)
    carina = rng.uniform(-0.3, -0.22)
    trach = np.exp(-((U / tr_w) ** 4)) * _smoothstep((carina - V) / 0.08) * _smoothstep((V + 1.0) / 0.2)
    D -= 0.07 * trach
    bubble = ((U - rng.uniform(0.35, 0.5)) / 0.1) ** 2 + ((V - dome_l - 0.12) / 0.05) ** 2 < 1
    D -= 0.12 * ndi.gaussian_filter(bubble.astype(np.float32), 0.01 * n)

    # ---- bones
    # spine: a faint column with vertebral bodies and disc spaces, seen through the mediastinum
    spine = np.exp(-((U / 0.055) ** 4))
    period = rng.uniform(0.085, 0.1)
    discs = 0.7 + 0.3 * _smoothstep(np.abs(np.sin(np.pi * (V - rng.uniform(0, 1)) / period)) * 3.0)
    D += 0.045 * spine * discs
    sig_bone = max(0.5, 0.011 * n)
    curves_post, curves_ant, curves_clav = [], [], []
    tau = np.linspace(0.0, 1.0, 48)
    rib_gap = rng.uniform(0.085, 0.1)
    for sgn in (-1.0, 1.0):
        vk = v_ap + 0.03
        for k in range(10):
            # posterior rib: from the spine out and slightly up, then down along the chest wall
            wk = min(lat + 0.02, 0.28 + 0.14 * k)
            s_ = 0.06 + wk * tau
            v_ = vk - (0.07 + 0.008 * k) * np.sin(np.pi * tau * 0.85) + (0.2 + 0.02 * k) * tau**3
            curves_post.append(np.column_stack([sgn * s_, v_]))
            vk += rib_gap * (1.0 + 0.04 * k)
        for k in range(6):
            # anterior rib: from the lateral wall down and inwards, fading before the sternum
            va = v_ap + 0.14 + 0.13 * k
            s_ = lat + 0.04 - (lat - 0.22) * tau
            v_ = va + 0.06 * np.sin(np.pi * tau * 0.5) + 0.14 * tau**1.5
            curves_ant.append(np.column_stack([sgn * s_, v_]))
        vm, vl = rng.uniform(-0.56, -0.48), rng.uniform(-0.76, -0.68)
        s_ = 0.07 + 0.62 * tau
        v_ = vm + (vl - vm) * tau + 0.03 * np.sin(2 * np.pi * tau)
        curves_clav.append(np.column_stack([sgn * s_, v_]))

    def to_img(cs: list[np.ndarray]) -> list[np.ndarray]:  # patient (u, v) -> image coordinates
        cr, sr = sc * np.cos(rot), sc * np.sin(rot)
        return [np.column_stack([cv[:, 0] * cr - cv[:, 1] * sr + du, cv[:, 0] * sr + cv[:, 1] * cr + dv]) for cv in cs]

    ribs_p = _curve_field(n, to_img(curves_post), sig_bone)
    ribs_a = _curve_field(n, to_img(curves_ant), sig_bone * 1.2)
    clav = _curve_field(n, to_img(curves_clav), sig_bone * 1.3)
    inside = body_t > 0
    # ribs are conspicuous over the lungs, faint over the soft tissue of the chest wall
    over_lung = 0.35 + 0.65 * ndi.gaussian_filter(lung.astype(np.float32), 0.03 * n)
    D += inside * (
        over_lung * (0.07 * np.clip(1.3 * ribs_p, 0, 1) + 0.05 * np.clip(ribs_a, 0, 1))
        + 0.09 * np.clip(1.3 * clav, 0, 1)
    )

    # ---- hila and bronchovascular markings (2-D trees from each hilum)
    hil_y = rng.uniform(-0.16, -0.06)
    starts, dirs = [], []
    for sgn in (-1.0, 1.0):
        k = 7
        ang = rng.uniform(-1.9, 1.9, k)  # angle from the horizontal, outward
        dvec = np.column_stack([sgn * np.cos(ang), np.sin(ang), np.zeros(k)])
        starts.append(np.tile([sgn * 0.2, hil_y, 0.0], (k, 1)))
        dirs.append(dvec)
    p0, p1, r = _grow_tree(
        rng,
        np.concatenate(starts),
        np.concatenate(dirs),
        rng.uniform(0.012, 0.018, 14),
        n_gen=6,
        len_per_radius=7.0,
        r_min=0.003,
        planar=True,
        centre=np.array([0.0, hil_y, 0.0]),
        outward=0.3,
    )
    pts, rad, wlen = _sample_segments(p0, p1, r, 0.5 * px_norm, rng, bow=0.1)
    col = (pts[:, 0] + 1.0) * n / 2 - 0.5
    row = (pts[:, 1] + 1.0) * n / 2 - 0.5
    marks = _splat((1, n, n), np.zeros(len(pts), np.int64), row, col, wlen / px_norm * (rad / 0.015))[0]
    sig_v = max(0.5, 0.006 * n)
    marks = ndi.gaussian_filter(marks, sig_v) * (np.sqrt(2 * np.pi) * sig_v)
    hila = np.exp(-(((S - 0.2) / 0.06) ** 2 + ((V - hil_y) / 0.09) ** 2))
    D += lung_soft * (0.07 * np.clip(marks, 0, 1.5) + 0.1 * hila)

    # ---- detector parameters, drawn before the disease so that one seed gives the same
    # patient and exposure in every class
    vignette = rng.uniform(0.08, 0.16)
    quantum = rng.normal(0.0, 1.0, (n, n)).astype(np.float32) * rng.uniform(0.008, 0.016)
    gain, gamma = rng.uniform(0.95, 1.1), rng.uniform(0.85, 1.15)

    # ---- disease
    nf = np.stack(
        [
            _noise_fields(rng, 1, (n, n), (0.03 * n, 0.03 * n))[0],
            _noise_fields(rng, 1, (n, n), (0.012 * n, 0.012 * n))[0],
        ]
    )
    if klass == "COVID-19":
        # bilateral, peripheral, lower-zone predominant hazy patches
        opac = np.zeros((n, n), np.float32)
        n_p = int(rng.integers(4, 10))
        for i in range(n_p):
            sgn = -1.0 if i % 2 == 0 else 1.0
            vc = rng.uniform(-0.35, 0.1) if rng.uniform() < 0.35 else rng.uniform(0.0, dome_r + 0.05)
            sc_ = lat - rng.uniform(0.03, 0.2)
            sx, sy = rng.uniform(0.1, 0.18), rng.uniform(0.12, 0.22)
            opac += rng.uniform(0.5, 1.0) * np.exp(-0.5 * (((U - sgn * sc_) / sx) ** 2 + ((V - vc) / sy) ** 2))
        opac = np.clip(opac, 0, 1.0) * np.clip(0.8 + 0.4 * nf[0] + 0.15 * nf[1], 0, 1.3)
        D += 0.46 * air * opac * rng.uniform(0.5, 0.75)  # haze: part of the air replaced by fluid
    elif klass == "Pneumonia":
        # focal lobar consolidation, usually unilateral; sharp where it meets a fissure
        sgn = -1.0 if rng.uniform() < 0.6 else 1.0
        side = (U < 0) if sgn < 0 else (U > 0)
        lobe = rng.choice(["lower", "middle", "upper"], p=[0.55, 0.25, 0.2])
        fis = rng.uniform(-0.2, -0.05)
        if lobe == "upper":
            zone = _smoothstep((fis - V) / 0.015)
            vc = 0.5 * (v_ap + fis)
        elif lobe == "middle":
            zone = _smoothstep((V - fis) / 0.015) * _smoothstep((0.55 - S) / 0.15)
            vc = 0.5 * (fis + dome_r)
        else:
            zone = _smoothstep((V - fis - 0.12) / 0.12)
            vc = dome_r
        bs, bw, bh = rng.uniform(0.35, 0.55), rng.uniform(0.18, 0.3), rng.uniform(0.2, 0.3)
        blob = np.exp(-0.5 * (((S - bs) / bw) ** 2 + ((V - vc) / bh) ** 2))
        opac = np.clip(1.6 * blob * (1.0 + 0.35 * nf[0]) - 0.25, 0, 1) * zone * side
        bronchogram = np.clip(marks, 0, 1) * 0.35
        D += 0.46 * air * opac * rng.uniform(0.75, 0.95) * (1.0 - bronchogram)
        if rng.uniform() < 0.2:  # a small contralateral patch now and then
            blob2 = np.exp(
                -0.5 * (((U + sgn * rng.uniform(0.4, 0.6)) / 0.08) ** 2 + ((V - rng.uniform(0.0, 0.3)) / 0.1) ** 2)
            )
            D += 0.46 * air * 0.4 * blob2

    # ---- detector: vignetting, exposure, blur, noise
    R2 = U0**2 + V0**2
    D = D * (1.0 - vignette * R2)
    D = ndi.gaussian_filter(D, max(0.4, 0.002 * n))
    D += quantum
    img = np.clip(gain * (D - 0.02) / 0.8, 0.0, 1.0) ** gamma
    return (img * 255.0 + 0.5).astype(np.uint8), lung


def cxr_phantom(size: int = 256, klass: str = "Normal", seed: int = 0) -> np.ndarray:
    """A seeded PA chest radiograph phantom: (size, size) uint8, 0 black .. 255 white.

    Bright bone and soft tissue, dark lung fields, heart shadow to the image right. ``klass`` in
    ``CXR_CLASSES``: "Normal" (clear lungs), "Pneumonia" (focal lobar opacity, usually one side),
    "COVID-19" (bilateral, peripheral, lower-zone hazy patches).
    """
    size = _check_size(size)
    klass = _check_klass(klass)
    img, _ = _cxr_render(size, klass, np.random.default_rng(seed))
    return img


def cxr_lesion_mask(size: int = 256, klass: str = "COVID-19", seed: int = 0, min_grey: int = 8) -> np.ndarray:
    """(size, size) bool mask of where the disease of ``cxr_phantom(size, klass, seed)`` shows.

    One seed draws the same patient and exposure in every class, the disease being drawn last, so
    the disease is exactly where the diseased image is brighter than the Normal image of the same
    seed; ``min_grey`` (of 255) drops the faint tails of the haze. All False for "Normal".
    """
    diseased = cxr_phantom(size, klass, seed).astype(np.int16)
    normal = cxr_phantom(size, "Normal", seed).astype(np.int16)
    return (diseased - normal) >= min_grey


# --------------------------------------------------------------------------------------------
# writers

CT_CSV_FIELDS = (
    "name",
    "image",
    "label",
    "H",
    "W",
    "Z",
    "spacing_row_mm",
    "spacing_col_mm",
    "spacing_slice_mm",
    "vox_bg",
    "vox_lung",
    "vox_ggo",
    "vox_consolidation",
)
CXR_MANIFEST_FIELDS = ("path", "label", "source", "patient_id")
_CT_INFECTION_CYCLE = ("mixed", "ggo", "mixed", "none")  # one patient in four without infection


def phantom_patients(n_patients: int, seed: int = 0) -> list[tuple[str, int, str]]:
    """The patients ``write_ct_phantom`` writes: [(name "P001", derived seed, infection mode), ...].

    Seeds are derived from ``seed`` and the patient index; infection cycles through
    mixed, ggo, mixed, none, so one patient in four (P004, P008, ...) has no infection.
    """
    n_patients = _check_positive("n_patients", n_patients)
    return [
        (f"P{i + 1:03d}", _derived_seed(seed, 0xC7, i), _CT_INFECTION_CYCLE[i % len(_CT_INFECTION_CYCLE)])
        for i in range(n_patients)
    ]


def _fmt(v: float) -> str:
    return f"{float(v):.6g}"


def write_ct_phantom(
    out_dir: Path, n_patients: int = 4, n_slices: int = 16, size: int = 256, seed: int = 0
) -> list[Path]:
    """Write phantom CT volumes as NIfTI plus ``volumes.csv``; returns the paths written (CSV last).

    Per patient: ``<out_dir>/P001_image.nii.gz`` (int16 HU, rounded) and ``P001_label.nii.gz``
    (uint8 schema labels), arrays stored (H, W, Z) so that ``img[:, :, z]`` is slice z (same
    layout as the shared RP9 volumes), affine = diag(row mm, col mm, slice mm, 1).
    ``volumes.csv`` columns: ``CT_CSV_FIELDS``.
    """
    import nibabel as nib

    size = _check_size(size)
    n_slices = _check_positive("n_slices", n_slices)
    plan = phantom_patients(n_patients, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = []
    for name, pseed, infection in plan:
        vol = ct_phantom_volume(size=size, n_slices=n_slices, seed=pseed, infection=infection)
        affine = np.diag([*vol.spacing, 1.0])
        img = np.round(vol.image_hu).astype(np.int16).transpose(1, 2, 0)
        lab = vol.label.transpose(1, 2, 0)
        paths = (out_dir / f"{name}_image.nii.gz", out_dir / f"{name}_label.nii.gz")
        for arr, path in zip((img, lab), paths, strict=True):
            nii = nib.Nifti1Image(np.ascontiguousarray(arr), affine)
            nii.header.set_xyzt_units("mm")
            nib.save(nii, str(path))
            written.append(path)
        counts = np.bincount(vol.label.ravel(), minlength=4)
        rows.append(
            [
                name,
                paths[0].name,
                paths[1].name,
                size,
                size,
                n_slices,
                *map(_fmt, vol.spacing),
                *(int(c) for c in counts[:4]),
            ]
        )
    csv_path = out_dir / "volumes.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CT_CSV_FIELDS)
        w.writerows(rows)
    written.append(csv_path)
    return written


def write_cxr_phantom(
    out_dir: Path, n_per_class: int = 20, size: int = 256, seed: int = 0, classes: tuple[str, ...] = CXR_CLASSES
) -> list[Path]:
    """Write phantom X-rays as 8-bit greyscale PNGs plus ``manifest.csv``; returns the paths (manifest last).

    Layout: ``<out_dir>/<class>/phantom_<class>_<i:03d>.png`` and ``<out_dir>/manifest.csv``
    (path relative to out_dir, label = class, source "phantom", patient_id unique per image).
    """
    from PIL import Image

    size = _check_size(size)
    n_per_class = _check_positive("n_per_class", n_per_class)
    classes = tuple(classes)
    if not classes:
        raise ValueError("classes must name at least one class")
    for k in classes:
        _check_klass(k)
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes!r}")
    out_dir = Path(out_dir)
    written: list[Path] = []
    rows = []
    for k in classes:
        ci = CXR_CLASSES.index(k)
        (out_dir / k).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img = cxr_phantom(size=size, klass=k, seed=_derived_seed(seed, 0x58, ci, i))
            rel = f"{k}/phantom_{k}_{i:03d}.png"
            Image.fromarray(img).save(out_dir / rel)
            written.append(out_dir / rel)
            rows.append([rel, k, "phantom", f"phantom-s{seed}-{k}-{i:03d}"])
    man = out_dir / "manifest.csv"
    with open(man, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CXR_MANIFEST_FIELDS)
        w.writerows(rows)
    written.append(man)
    return written
