"""CycleGAN's image pool: fills first, then swaps half the time, reproducibly, and survives a checkpoint."""

from __future__ import annotations

import pytest
import torch

from radsynth.synth.image_pool import POOL_SIZE, ImagePool


def _images(start: int, n: int) -> torch.Tensor:
    """n images (1, 2, 2) whose every pixel is its number: start, start + 1, ..."""
    return torch.arange(start, start + n, dtype=torch.float32)[:, None, None, None].expand(n, 1, 2, 2).clone()


def test_paper_size_and_disabled_pool():
    assert POOL_SIZE == 50
    pool = ImagePool(0, (1, 2, 2))
    x = _images(0, 3)
    assert torch.equal(pool.query(x, torch.Generator().manual_seed(0)), x)
    with pytest.raises(ValueError):
        ImagePool(-1, (1, 2, 2))


def _reference_query(stored: list[float], capacity: int, new: list[float], generator: torch.Generator) -> list[float]:
    """The rule on plain lists (CycleGAN's reference ImagePool.query), drawing from ``generator`` as the pool does."""
    out = []
    for value in new:
        if len(stored) < capacity:
            stored.append(value)
            out.append(value)
            continue
        swap = torch.rand((), generator=generator).item() < 0.5
        slot = int(torch.randint(capacity, (), generator=generator))
        if swap:
            out.append(stored[slot])
            stored[slot] = value
        else:
            out.append(value)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_fills_then_returns_new_or_stored_images(seed):
    pool = ImagePool(4, (1, 2, 2))
    g = torch.Generator().manual_seed(seed)
    first = _images(0, 3)
    assert torch.equal(pool.query(first, g), first) and len(pool) == 3
    out = pool.query(_images(3, 3), g)  # 3 goes in (pool full at 4), 4 and 5 meet a full pool
    assert out[0, 0, 0, 0] == 3 and len(pool) == 4
    stored = [float(v) for v in pool.stored[:, 0, 0, 0]]
    returned = [float(v) for v in out[:, 0, 0, 0]]
    # nothing is lost or duplicated: what the pool holds plus what it returned is every image it was given
    assert sorted(stored + returned[1:]) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    # and it is exactly the reference rule with the same draws
    ref_stored: list[float] = []
    replay = torch.Generator().manual_seed(seed)
    assert _reference_query(ref_stored, 4, [0.0, 1.0, 2.0], replay) == [0.0, 1.0, 2.0]
    assert _reference_query(ref_stored, 4, [3.0, 4.0, 5.0], replay) == returned
    assert ref_stored == stored


def test_some_seed_swaps_and_some_keeps():
    """Both branches of the rule occur among the seeds the test above uses."""
    kept = set()
    for seed in range(6):
        pool = ImagePool(4, (1, 2, 2))
        g = torch.Generator().manual_seed(seed)
        pool.query(_images(0, 4), g)
        kept.add(float(pool.query(_images(4, 1), g)[0, 0, 0, 0]) == 4.0)
    assert kept == {True, False}


def test_swaps_about_half_the_time_and_is_reproducible():
    def run(seed: int) -> tuple[int, torch.Tensor]:
        pool = ImagePool(50, (1, 2, 2))
        g = torch.Generator().manual_seed(seed)
        pool.query(_images(0, 50), g)
        swapped = 0
        for k in range(1000):
            image = _images(1000 + k, 1)
            swapped += int(pool.query(image, g)[0, 0, 0, 0] != 1000 + k)
        return swapped, pool.stored.clone()

    swapped, stored = run(3)
    assert 440 <= swapped <= 560  # p = 1/2; measured 470 of 1000 with seed 3
    again, stored_again = run(3)
    assert again == swapped and torch.equal(stored, stored_again)


def test_state_dict_round_trip_continues_identically():
    pool = ImagePool(5, (1, 2, 2))
    g = torch.Generator().manual_seed(1)
    pool.query(_images(0, 7), g)
    copy = ImagePool(5, (1, 2, 2))
    copy.load_state_dict(pool.state_dict())
    assert len(copy) == 5
    a = pool.query(_images(10, 4), torch.Generator().manual_seed(2))
    b = copy.query(_images(10, 4), torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and torch.equal(pool.stored, copy.stored)
