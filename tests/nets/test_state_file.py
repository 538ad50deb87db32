"""Reading weights files without unpickling arbitrary objects."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from radsynth.errors import InputError
from radsynth.nets import read_state_file


def test_safetensors_and_pt_round_trip(tmp_path):
    state = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([7])}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = read_state_file(tmp_path / name)
        assert set(loaded) == {"a.weight", "b"}
        assert torch.equal(loaded["a.weight"], state["a.weight"]) and loaded["b"].item() == 7


def test_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.pt: weights file not found"):
        read_state_file(tmp_path / "missing.pt")
    (tmp_path / "w.npz").write_bytes(b"x")
    with pytest.raises(InputError, match=r"w.npz: weights must be a .safetensors, .pt or .pth file"):
        read_state_file(tmp_path / "w.npz")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match=r"junk\.safetensors: not a readable safetensors file"):
        read_state_file(tmp_path / "junk.safetensors")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(InputError, match=r"list\.pt: expected a state dict"):
        read_state_file(tmp_path / "list.pt")
