"""How long the full-content fingerprint takes on a 7B-shaped model, and whether it sees one changed weight.

Synthetic Llama-2-7B shapes (≈ 6.7 B parameters) in bf16 on the GPU when there is one (else a 1/16 slice on CPU):
``python benchmarks/fingerprint_speed.py``. Also checks that CPU and GPU give the same checksum (cache keys must
not depend on the device).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from analysis.core.models import tensor_checksum  # noqa: E402


def shapes(layers: int = 32, d: int = 4096, ff: int = 11008, vocab: int = 32000) -> list[tuple[int, int]]:
    return [(vocab, d), (vocab, d)] + [(d, d)] * 4 * layers + [(ff, d), (ff, d), (d, ff)] * layers


def main() -> None:
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    sh = shapes() if dev == "cuda" else shapes(layers=2)
    g = torch.Generator(device=dev).manual_seed(0)
    ts = [torch.randn(s, generator=g, device=dev, dtype=torch.bfloat16) for s in sh]
    n = sum(t.numel() for t in ts)
    tensor_checksum(ts[-1])
    if dev == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    sums = [tensor_checksum(t) for t in ts]
    dt = time.perf_counter() - t0
    print(
        f"{dev}: {n / 1e9:.2f} B bf16 parameters checksummed in {dt:.2f} s ({n / dt / 1e6:.0f} M/s; 7 B: {7e9 * dt / n:.1f} s)"
    )
    t = ts[5]
    t.view(-1)[12345] = torch.nextafter(t.view(-1)[12345], torch.tensor(1e9, dtype=t.dtype, device=dev))
    print("one changed weight changes the checksum:", tensor_checksum(t) != sums[5])
    small = ts[2][:512]
    print("CPU and", dev, "agree:", tensor_checksum(small.cpu()) == tensor_checksum(small))


if __name__ == "__main__":
    main()
