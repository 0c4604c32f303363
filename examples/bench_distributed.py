"""Data-parallel scaling of the seed MLP and CNN on 1 and 2 MPI processes of this machine.

    python examples/bench_distributed.py [--models mlp,cnn] [--ranks 1,2] [--epochs 2]

For each model and process count it launches ``mpiexec -n N python examples/bench_distributed.py
--worker MODEL`` (the mpiexec of graphc[mpi], next to this Python) with one thread per process
(GRAPHC_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS = 1); with one process ``fit`` is the
plain one (no allreduce). Each run trains one untimed epoch (kernels compile) and then
``--epochs`` timed ones over the same samples, ``--batch-size`` per process (a step trains N
times as many), and times 50 bare ``MPI_Allreduce`` calls of the
gradient buffer. Printed: epoch time (rank 0, mean of the timed epochs), samples per second,
scaling efficiency ``T(1) / (N * T(N))`` (1.0: N processes finish an epoch N times faster), the
bytes allreduced per step (all gradients, one float32 buffer) and one Allreduce's time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _model(name):
    from graphc.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from graphc.models import Sequential
    if name == "mlp":
        m = Sequential([Dense(64, activation="relu", input_dim=784), Dense(10, activation="softmax")])
    else:
        m = Sequential([Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
                        MaxPooling2D((2, 2)), Conv2D(64, (3, 3), activation="relu"),
                        MaxPooling2D((2, 2)), Flatten(), Dense(128, activation="relu"),
                        Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def worker(args):
    """One process of the MPI job: train, time, report (rank 0) as one JSON line."""
    import numpy as np
    sys.path.insert(0, HERE)
    from _common import EpochTimer, load_mnist, seed_all
    import graphc as gc
    seed_all(0)
    shape = (784,) if args.worker == "mlp" else (28, 28, 1)
    (x, y), _ = load_mnist(None, shape=shape)
    x, y = x[:args.samples], y[:args.samples]
    m = _model(args.worker)
    timer = EpochTimer()
    with gc.distributed.DataParallel():
        m.fit(x, y, batch_size=args.batch_size, epochs=1 + args.epochs, verbose=0, callbacks=[timer])
        # the one gradient buffer holds every trainable weight's gradient
        nbytes = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in m.trainable_weights)
        comm = gc.distributed.init()
        a = np.ones(nbytes // 4, np.float32)
        comm.Barrier()
        t0 = time.perf_counter()
        for _ in range(50):
            gc.distributed.allreduce_array(a)
        t_ar = (time.perf_counter() - t0) / 50
    if gc.distributed.rank() == 0:
        steps = args.samples // (args.batch_size * gc.distributed.size())
        print(json.dumps({"model": args.worker, "ranks": gc.distributed.size(),
                          "epoch_s": float(np.mean(timer.times[1:])), "first_epoch_s": timer.times[0],
                          "steps": steps, "bytes_per_step": nbytes,
                          "allreduce_s": t_ar, "samples": args.samples}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32, help="per process")
    ap.add_argument("--samples", type=int, default=0, help="training samples (0: 8000 MLP, 2048 CNN)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        args.samples = args.samples or (8000 if args.worker == "mlp" else 2048)
        return worker(args)
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        raise SystemExit("no mpiexec next to this Python: pip install graphc[mpi]")
    env = dict(os.environ, GRAPHC_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               GRAPHC_TIERED="0")
    rows = []
    for model in args.models.split(","):
        for n in map(int, args.ranks.split(",")):
            cmd = [mpiexec, "-n", str(n), sys.executable, os.path.abspath(__file__), "--worker", model,
                   "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                   "--samples", str(args.samples)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
            if out.returncode:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = {r["model"]: r["epoch_s"] for r in rows if r["ranks"] == 1}
    print(f"{'model':<6}{'ranks':>6}{'samples':>9}{'epoch s':>10}{'samples/s':>11}{'efficiency':>12}"
          f"{'bytes/step':>12}{'allreduce us':>14}")
    for r in rows:
        eff = base[r["model"]] / (r["ranks"] * r["epoch_s"]) if r["model"] in base else float("nan")
        print(f"{r['model']:<6}{r['ranks']:>6}{r['samples']:>9}{r['epoch_s']:>10.3f}"
              f"{r['samples'] / r['epoch_s']:>11.0f}{eff:>12.2f}{r['bytes_per_step']:>12}"
              f"{r['allreduce_s'] * 1e6:>14.0f}")
    return rows


if __name__ == "__main__":
    main()
