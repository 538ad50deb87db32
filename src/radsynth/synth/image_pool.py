"""CycleGAN's image pool: the discriminator sees a history of generated images, not only the newest.

Shrivastava et al. 2017 via CycleGAN (Zhu et al. 2017, section 4, "a buffer that stores the 50
previously created images"). The rule is the reference code's ``ImagePool.query``: while the pool
is not full, every generated image is stored and returned; once it is full, each image is, with
probability 1/2, swapped for a randomly chosen stored one (the stored one is returned, the new one
takes its place), else returned as it is.

The pool is an ``nn.Module`` whose contents are buffers, so it is saved and restored with the
checkpoint like a network; with the per-step ``torch.Generator`` a resumed run draws exactly what
an uninterrupted one would.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

POOL_SIZE = 50  # CycleGAN section 4 / reference code --pool_size 50


class ImagePool(nn.Module):
    """A pool of up to ``capacity`` images of shape ``image_shape`` (C, H, W).

    ``capacity=0`` disables it: ``query`` then returns its input unchanged.
    """

    stored: Tensor
    filled: Tensor

    def __init__(self, capacity: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.register_buffer("stored", torch.zeros((capacity, *image_shape)))
        self.register_buffer("filled", torch.zeros((), dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.filled)

    @torch.no_grad()
    def query(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """(N, C, H, W) newly generated images -> (N, C, H, W) images for the discriminator (detached).

        All random choices come from ``generator`` (CPU), two draws per image once the pool is full.
        """
        images = images.detach()
        if self.capacity == 0:
            return images
        out = []
        for image in images:
            if int(self.filled) < self.capacity:
                self.stored[int(self.filled)] = image
                self.filled += 1
                out.append(image)
                continue
            swap = torch.rand((), generator=generator).item() < 0.5
            slot = int(torch.randint(self.capacity, (), generator=generator))
            if swap:
                old = self.stored[slot].clone()
                self.stored[slot] = image
                out.append(old)
            else:
                out.append(image)
        return torch.stack(out)
