"""Print ``export`` lines that make torch run on other CPU kernels than this machine's own (``make test-other-cpu``).

torch dispatches three kernel families by instruction set: ATen's own (``ATEN_CPU_CAPABILITY``),
oneDNN's convolutions (``ONEDNN_MAX_CPU_ISA``) and MKL's matrix products (``MKL_ENABLE_INSTRUCTIONS``).
On an AVX-512 machine all three are capped at AVX2; elsewhere at the plain (pre-AVX) kernels.
"""

from __future__ import annotations

import torch

AVX2_MACHINE = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
PLAIN_MACHINE = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}


def other_cpu(native: str) -> dict[str, str]:
    """The settings for a machine unlike one whose ATen capability is ``native`` ('AVX512', 'AVX2', 'DEFAULT', ...)."""
    return AVX2_MACHINE if native.upper().startswith("AVX512") else PLAIN_MACHINE


if __name__ == "__main__":
    native = torch.backends.cpu.get_cpu_capability()
    settings = other_cpu(native)
    print(f"echo 'outcome tests again: this CPU runs {native}; now {' '.join(f'{k}={v}' for k, v in settings.items())}';")
    print(" ".join(f"export {k}={v};" for k, v in settings.items()))
