"""Accuracy runs of the other tasks (docs/tasks.md quotes what they printed).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.tasks RUN [options]

    RUN = spoken-digits --data-dir DIR [--model logmel_cnn] [--epochs N]
          speakers --data-dir DIR [--model logmel_cnn]  # the 6 speaker-held-out folds
          segment [--epochs N] [--train-scenes N] [--dataset mnist-5k+fashion-mnist]

``DIR`` holds the FSDD recordings (``DIR/recordings`` or ``DIR/fsdd/recordings``).
Each run prints its accuracy (or IoU) and its training time. NumPy's BLAS is capped
at ``--threads`` (2, as the other benchmarks): an uncapped OpenBLAS on a machine
shared with other jobs can spin for far longer than the products take.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import threadpoolctl

import convlens as cl
from convlens import data, fsdd, tasks
from convlens.history import History

from . import THREADS


def _finished(model: cl.nn.Module, history: History) -> cl.nn.Module:
    """The trained model, or exit: an interrupted run's figures are not the run's."""
    if history.interrupted:
        raise SystemExit(f"stopped after {len(history.epochs)} epoch(s): no figures")
    return model


def spoken_digits(args: argparse.Namespace) -> None:
    config = tasks.task_config("spoken-digits", model=args.model, epochs=args.epochs, seed=args.seed)
    started = time.perf_counter()
    model = _finished(*tasks.train_task(config, args.data_dir, verbose=True))
    seconds = time.perf_counter() - started
    _, test = tasks.load_task_data(config, args.data_dir)
    result = tasks.evaluate_task(model, config, test)
    print(f"{config['model']}: test accuracy {100 * result.accuracy:.2f}% (official split), {seconds:.0f} s")


def speakers(args: argparse.Namespace) -> None:
    """Train on five speakers, test on the sixth, for each speaker."""
    config = tasks.task_config("spoken-digits", model=args.model, epochs=args.epochs, seed=args.seed)
    folder = fsdd.find_folder(data.search_dirs("fsdd", args.data_dir))
    if folder is None:
        raise SystemExit(f"no FSDD recordings under {args.data_dir}")
    accuracies = []
    for speaker, train, test in fsdd.speaker_folds(fsdd.read_folder(folder)):
        loaders = (
            data.DataLoader(
                (train.waveforms, train.digits), config["batch_size"], shuffle=True, seed=args.seed
            ),
            data.DataLoader((test.waveforms, test.digits), tasks.TEST_BATCH),
        )
        started = time.perf_counter()
        model = _finished(*tasks.train_task(config, loaders=loaders))
        accuracy = tasks.evaluate_task(model, config, loaders[1]).accuracy
        accuracies.append(accuracy)
        print(
            f"held out {speaker:>9}: {100 * accuracy:.2f}%  ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    values = 100 * np.array(accuracies)
    print(
        f"{config['model']}, {config['epochs']} epochs: mean {values.mean():.2f}%, std {values.std():.2f}, "
        f"min {values.min():.2f}%, max {values.max():.2f}%"
    )


def segment(args: argparse.Namespace) -> None:
    config = tasks.task_config(
        "segment", epochs=args.epochs, seed=args.seed, train_scenes=args.train_scenes, dataset=args.dataset
    )
    started = time.perf_counter()
    model = _finished(*tasks.train_task(config, verbose=True))
    seconds = time.perf_counter() - started
    _, test = tasks.load_task_data(config)
    result = tasks.evaluate_task(model, config, test)
    print(
        f"unet on {config['dataset']}: pixel accuracy {100 * result.pixel_accuracy:.2f}%, "
        f"mean IoU (items) {result.mean_iou:.3f}, "
        f"IoU with background {np.nanmean(result.iou):.3f}, {seconds:.0f} s"
    )
    print(
        "IoU per class: "
        + ", ".join(f"{n}={v:.3f}" for n, v in zip(config["classes"], result.iou, strict=True))
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", choices=["spoken-digits", "speakers", "segment"])
    parser.add_argument("--data-dir")
    parser.add_argument("--model")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--train-scenes", type=int)
    parser.add_argument("--dataset", help="segment: the scenes' source (default mnist-5k)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    limiter = threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")
    print(f"{args.run}: BLAS threads {args.threads}, load average {os.getloadavg()[0]:.2f}", flush=True)
    cl.manual_seed(args.seed)
    {"spoken-digits": spoken_digits, "speakers": speakers, "segment": segment}[args.run](args)
    limiter.unregister()


if __name__ == "__main__":
    main()
