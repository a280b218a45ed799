"""Train a convlens model with PyTorch DistributedDataParallel, then bring it back to convlens.

Run it with torchrun, one process per GPU (``--backend nccl``) or per CPU core (``gloo``)::

    torchrun --nproc_per_node=2 examples/ddp_train.py --checkpoint run/lenet5 --out run/lenet5-ddp

It starts from a convlens checkpoint (or a fresh ``--model``), copies it into PyTorch
(``cl.interop.to_torch``), trains ``--steps`` steps of DDP (every process reads its own
shard of each global batch; DDP averages the gradients, so every process holds the same
weights), then process 0 brings the model back (``cl.interop.from_torch``), saves it as a
convlens checkpoint with its input normalisation, and prints one JSON line with the test
accuracy measured in both libraries. The result opens in ``convlens serve``, ``cl.viz``
and ``convlens export``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import convlens as cl
from convlens.images import MNIST_MEAN, MNIST_STD, normalize


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="convlens checkpoint to start from (default: a fresh --model)")
    parser.add_argument("--model", default="lenet5", help="model to start from without --checkpoint")
    parser.add_argument("--out", required=True, help="where to save the trained convlens checkpoint")
    parser.add_argument("--dataset", default="mnist-5k", help="mnist-5k (shipped), mnist or fashion-mnist")
    parser.add_argument("--data-dir", help="where the data set is")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="gloo", choices=["gloo", "nccl"])
    return parser.parse_args(argv)


def model_inputs(images: np.ndarray, input_shape: Sequence[int], levels=None) -> tuple[np.ndarray, dict]:
    """uint8 (N, 28, 28) digits as the model's normalised float32 input, and that normalisation
    (``levels``: the (background, ink) values a model prescribes, as the classic LeNet-5)."""
    if levels is None:
        mean, std = MNIST_MEAN, MNIST_STD
    else:
        mean, std = -levels[0] / (levels[1] - levels[0]), 1.0 / (levels[1] - levels[0])
    pad = max(0, (input_shape[-1] - images.shape[-1]) // 2)
    batch = normalize(images[:, None].astype(np.float32) / 255.0, mean, std, pad)
    return batch.astype(np.float32), {"mean": mean, "std": std, "pad": pad}


def accuracy_torch(module: torch.nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device) -> float:
    module.eval()
    with torch.no_grad():
        scores = torch.cat(
            [module(torch.from_numpy(x[i : i + 500]).to(device)) for i in range(0, len(x), 500)]
        )
    return float((scores.argmax(1).cpu().numpy() == y).mean())


def accuracy_convlens(model: cl.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with cl.no_grad():
        scores = np.concatenate([model(cl.tensor(x[i : i + 500])).data for i in range(0, len(x), 500)])
    return float((scores.argmax(1) == y).mean())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if args.backend == "nccl" else "cpu")
    torch.manual_seed(args.seed)
    cl.manual_seed(args.seed)  # a fresh --model starts from the same weights in every process

    if args.checkpoint:
        saved = cl.io.load(args.checkpoint, with_optimizer=True)
        model, input_shape = saved.model, saved.config.get("input_shape")
    else:
        model, input_shape = cl.models.get(args.model), None
    input_shape = tuple(getattr(model, "input_shape", None) or input_shape or (1, 28, 28))
    levels = getattr(model, "input_levels", None)
    splits = cl.data.load_dataset(args.dataset, root=args.data_dir)
    x_train, normalisation = model_inputs(splits.train.images, input_shape, levels)
    y_train = splits.train.labels.astype(np.int64)
    twin = cl.interop.to_torch(model).to(device)
    ddp = DistributedDataParallel(twin, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    loss_of = getattr(twin, "loss", torch.nn.functional.cross_entropy)  # the classic LeNet-5's MAP loss

    order, rng, cursor = np.array([], dtype=np.int64), np.random.default_rng(args.seed), 0
    global_batch = args.batch_size * world
    ddp.train()
    for _ in range(args.steps):
        if cursor + global_batch > len(order):  # the same permutation in every process (same seed)
            order, cursor = rng.permutation(len(x_train)), 0
        mine = order[cursor : cursor + global_batch][rank::world]  # this process's shard
        cursor += global_batch
        x, y = torch.from_numpy(x_train[mine]).to(device), torch.from_numpy(y_train[mine]).to(device)
        optimizer.zero_grad()
        loss = loss_of(ddp(x), y)
        loss.backward()  # DDP all-reduces (averages) the gradients here
        optimizer.step()

    checksum = torch.stack([p.detach().double().sum() for p in twin.parameters()]).sum().reshape(1)
    gathered = [torch.zeros_like(checksum) for _ in range(world)]
    dist.all_gather(gathered, checksum)
    if rank == 0:
        x_test, _ = model_inputs(splits.test.images, input_shape, levels)
        y_test = splits.test.labels
        trained = cl.interop.from_torch(twin.cpu())
        config = {**normalisation, "input_shape": list(input_shape), "classes": list(splits.train.classes)}
        cl.save(trained, args.out, config={**config, "dataset": args.dataset, "ddp_steps": args.steps})
        report = {
            "world_size": world,
            "steps": args.steps,
            "final_loss": float(loss.detach()),
            "ranks_agree": bool(all(torch.equal(g, gathered[0]) for g in gathered)),
            "torch_accuracy": accuracy_torch(twin, x_test, y_test, torch.device("cpu")),
            "convlens_accuracy": accuracy_convlens(trained, x_test, y_test),
        }
        print(json.dumps(report), flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
