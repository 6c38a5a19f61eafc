"""Where a toy-training step spends its time, and what a full training costs.

    python bench/train_toy.py [--steps 10] [--threads 1]

Prints seconds per step for drawing the world batch, forward+backward, and the optimizer,
for the default TrainConfig, and the projected wall time of a full training. The machine's
load changes these figures a lot: compare ratios from one run, and quote the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    import torch

    torch.set_num_threads(args.threads)
    from clipxai.toy import train as T

    config = T.TrainConfig()
    model = T.build_model(config)
    optimizer = T.make_optimizer(model, config)
    tokens = T.Tokens(config.context_length)
    totals = {"world": 0.0, "forward+backward": 0.0, "optimizer": 0.0}
    for step in range(args.steps + 2):
        t0 = time.perf_counter()
        batch = T.world_batch(config, step)
        t1 = time.perf_counter()
        loss, _ = T.contrastive_loss(model.encode_image(T.normalize(torch.from_numpy(batch.images))),
                                     model.encode_text(tokens(batch.captions)), model.logit_scale, batch.captions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if step >= 2:
            totals["world"] += t1 - t0
            totals["forward+backward"] += t2 - t1
            totals["optimizer"] += t3 - t2
    per_step = sum(totals.values()) / args.steps
    print(f"toy training step, batch {config.batch_size}, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    for name, total in totals.items():
        print(f"  {name:<18} {1000 * total / args.steps:8.1f} ms/step")
    print(f"  {'total':<18} {1000 * per_step:8.1f} ms/step")
    print(f"  full training ({config.steps} steps): {config.steps * per_step / 60:.1f} min")
    params = sum(p.numel() for p in model.parameters())
    print(f"  trainable parameters: {params:,}")


if __name__ == "__main__":
    main()
