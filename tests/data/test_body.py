"""The body of a CT slice and clearing the table: a drawn slice with a known table, cable and field of view."""

import numpy as np
import torch
from scipy import ndimage

from radsynth.data.body import body_mask, clear_outside_body


def _slice(size: int = 128):
    """[0, 1] levels: outside the field of view 0, air 0.26, body 0.85, lungs 0.36; a 3 px table 4 px under the body
    and a 1 px cable beside it. Returns (image on [-1, 1], label, table + cable mask, body)."""
    y, x = np.mgrid[:size, :size].astype(float) / size
    unit = np.where((y - 0.5) ** 2 + (x - 0.5) ** 2 < 0.48**2, 0.26, 0.0)
    body = ((y - 0.48) / 0.3) ** 2 + ((x - 0.5) / 0.4) ** 2 < 1
    unit[body] = 0.85
    label = np.zeros((size, size), np.int64)
    for cx in (0.33, 0.67):
        lung = ((y - 0.45) / 0.18) ** 2 + ((x - cx) / 0.12) ** 2 < 1
        label[lung] = 1
        unit[lung] = 0.36
    label[(label == 1) & (((y - 0.5) / 0.05) ** 2 + ((x - 0.3) / 0.04) ** 2 < 1)] = 2
    bottom = int(np.nonzero(body.any(1))[0].max())
    table = np.zeros((size, size), bool)
    table[bottom + 5: bottom + 8, 20:108] = True
    table[50:80, 6] = True  # a cable, 6 px left of the body
    unit[table] = 0.8
    return torch.from_numpy(unit * 2 - 1).float()[None], torch.from_numpy(label), table, body


def test_the_table_and_cables_go_and_nothing_else_changes():
    image, label, table, body = _slice()
    mask = body_mask(image[0].numpy(), label.numpy())
    assert mask[body].all() and not mask[table].any()  # the body with its lungs, not the table
    cleared, count = clear_outside_body(image, label)
    assert cleared.shape == image.shape and count == int(table.sum())
    unit = (cleared[0].numpy() + 1) / 2
    assert np.allclose(unit[table], 0.26, atol=1e-6)  # the air level next to the body
    assert torch.equal(cleared[0][torch.from_numpy(~table)], image[0][torch.from_numpy(~table)])  # everything else bit for bit
    noisy = image.clone()
    near = ndimage.binary_dilation(body, iterations=2)  # the body mask takes in the pixel next to the body's edge
    air = torch.from_numpy(~near & ((image[0].numpy() + 1) / 2 > 0.2) & ~table)
    noisy[0][air] += 0.02 * torch.randn(int(air.sum()), generator=torch.Generator().manual_seed(0))
    flattened, _ = clear_outside_body(noisy, label)
    assert float((flattened[0][air] - (0.26 * 2 - 1)).abs().max()) < 0.01  # the air's noise is flattened to its level ...
    outside = torch.from_numpy((image[0].numpy() + 1) / 2 < 0.1)
    assert torch.equal(flattened[0][outside], image[0][outside]) and torch.equal(flattened[0][torch.from_numpy(body)], image[0][torch.from_numpy(body)])


def test_a_slice_without_lung_or_table_is_left_alone():
    image, label, table, _ = _slice()
    untouched, count = clear_outside_body(image, torch.zeros_like(label))
    assert count == 0 and torch.equal(untouched, image)
    clean = image.clone()
    clean[0][torch.from_numpy(table)] = 0.26 * 2 - 1
    again, count = clear_outside_body(clean, label)
    assert count == 0 and torch.equal(again, clean)
