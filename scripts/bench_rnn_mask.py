"""Padded batches through the RNN branch: the on-device masking (no host sync, no packing) against
the packed sequences it replaced (lengths copied to the host every step), side by side.

    python scripts/bench_rnn_mask.py [--device cuda] [--repeats 20] [--batch 64] [--length 200]

Each row: one training step (forward + backward) of a GRU/LSTM branch on a padded batch (lengths
uniform in [length/4, length]), median over ``repeats`` after a warm-up, and the ratio packed / masked
(> 1: the masking is faster). Both give the same outputs on the real steps (checked here too).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import Tensor, nn

from fusionlab.branches import RNNBranch


def packed_forward(branch: RNNBranch, reference: nn.RNNBase, x: Tensor, mask: Tensor) -> Tensor:
    """The branch's forward before this change: lengths to the host, packed sequences."""
    lengths = mask.sum(dim=1).clamp_min(1).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths, batch_first=True, enforce_sorted=False)
    out, _ = reference(packed)
    return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[-1])[0]


def timed(steps: list, device: torch.device, repeats: int) -> list[float]:
    """Median seconds per call of each step, the steps interleaved (so a change in the machine's load
    hits both alike), after 3 warm-up rounds."""
    times: list[list[float]] = [[] for _ in steps]
    for i in range(repeats + 3):
        for j, step in enumerate(steps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 3:
                times[j].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device {device}, batch {args.batch}, length {args.length}, hidden {args.hidden}, "
          f"torch threads {torch.get_num_threads()}")
    print("| cell | bidirectional | layers | packed (ms) | masked (ms) | packed / masked | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for cell in ("gru", "lstm"):
        for bidirectional in (False, True):
            for layers in (1, 2):
                print(row(cell, bidirectional, layers, args, device), flush=True)


def row(cell: str, bidirectional: bool, layers: int, args: argparse.Namespace, device: torch.device) -> str:
    branch = RNNBranch(args.channels, args.length, cell=cell, hidden=args.hidden, layers=layers,
                       bidirectional=bidirectional).to(device)
    rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
    reference = rnn_cls(args.channels, args.hidden, num_layers=layers, batch_first=True,
                        bidirectional=bidirectional).to(device)
    branch.rnn.load_state_dict(reference.state_dict())  # the same weights (the old layout maps on load)
    x = torch.randn(args.batch, args.channels, args.length, device=device)
    lengths = torch.randint(args.length // 4, args.length + 1, (args.batch,), device=device)
    mask = torch.arange(args.length, device=device) < lengths[:, None]
    with torch.no_grad():
        diff = (branch(x, mask) - packed_forward(branch, reference, x, mask)).abs().max().item()

    def new_step() -> None:
        branch.zero_grad(set_to_none=True)
        branch(x, mask).square().mean().backward()

    def old_step() -> None:
        reference.zero_grad(set_to_none=True)
        packed_forward(branch, reference, x, mask).square().mean().backward()

    masked, packed = timed([new_step, old_step], device, args.repeats)
    return (f"| {cell} | {bidirectional} | {layers} | {packed * 1e3:.1f} | {masked * 1e3:.1f} | "
            f"{packed / masked:.2f} | {diff:.1e} |")

if __name__ == "__main__":
    main()
