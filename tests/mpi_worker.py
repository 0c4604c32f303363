"""One process of the MPI jobs that tests/test_distributed.py launches (``mpiexec -n 2 python
tests/mpi_worker.py MODE OUT``); every rank writes what it ends with under the folder OUT.

Modes: ``train`` (data-parallel fit with shuffling and a checkpoint per epoch, a second fit without
shuffling, a third that rank 1 alone asks to stop, and the Session-level allreduce op),
``resume`` (load the unshuffled fit's epoch-1 checkpoint and train its second epoch), ``raise`` /
``kill`` (rank 1 raises / is SIGKILLed after two steps of a long fit).
"""
import json
import os
import signal
import sys

import numpy as np

import graphc as gc
from graphc.callbacks import LambdaCallback, ModelCheckpoint
from graphc.layers import Dense
from graphc.models import Sequential, load_model
from graphc.utils import set_random_seed

BATCH = 8           # per process
EPOCHS = 2


def data():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(96, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 96)]
    return x, y


def make_model(seed=5):
    set_random_seed(seed)
    m = Sequential([Dense(8, activation="tanh", input_dim=6), Dense(3, activation="softmax")])
    m.compile(gc.optimizers.Adam(0.02), "categorical_crossentropy", metrics=["accuracy"])
    return m


def save(out, name, model, **extra):
    np.savez(os.path.join(out, f"{name}_rank{gc.distributed.rank()}.npz"), *model.get_weights())
    if extra:
        with open(os.path.join(out, f"{name}_rank{gc.distributed.rank()}.json"), "w") as f:
            json.dump(extra, f)


def train(out):
    x, y = data()
    r = gc.distributed.rank()
    with gc.distributed.DataParallel():
        m = make_model(5 + r)   # different local initial weights: rank 0's are broadcast
        h = m.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0,
                  callbacks=[ModelCheckpoint(os.path.join(out, "shuffled_{epoch}.npz"))])
        save(out, "shuffled", m, history=h.history, steps=h.params["steps"])
        m2 = make_model(11)
        m2.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
               callbacks=[ModelCheckpoint(os.path.join(out, "plain_{epoch}.npz"))])
        save(out, "plain", m2)
        # a stop asked for on rank 1 alone in the middle of epoch 1 stops both ranks after it
        m3 = make_model(11)

        def stop_on_rank1(batch, logs):
            if r == 1 and batch == 1:
                m3.stop_training = True
        h3 = m3.fit(x, y, batch_size=BATCH, epochs=5, verbose=0,
                    callbacks=[LambdaCallback(on_train_batch_end=stop_on_rank1)])
        with open(os.path.join(out, f"stopped_rank{r}.json"), "w") as f:
            json.dump(len(h3.history["loss"]), f)
    # the TF-1 level op in a Session graph: sum and mean of rank-dependent values, and the gradient
    v = gc.placeholder("float32", (3,))
    s, mean = gc.distributed.allreduce(v, op="sum"), gc.distributed.allreduce(v, op="mean")
    (g,) = gc.gradients(gc.reduce_sum(s * s), [v])
    vals = gc.Session().run([s, mean, g], {v: np.arange(3, dtype="float32") + 10 * r})
    with open(os.path.join(out, f"op_rank{r}.json"), "w") as f:
        json.dump([a.tolist() for a in vals], f)


def resume(out):
    x, y = data()
    with gc.distributed.DataParallel():
        m = load_model(os.path.join(out, "plain_1.npz"))
        m.fit(x, y, batch_size=BATCH, epochs=EPOCHS, initial_epoch=1, shuffle=False, verbose=0)
    save(out, "resumed", m)


def fail(out, how):
    x, y = data()

    def on_batch_end(batch, logs):
        if gc.distributed.rank() == 1 and batch == 2:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("rank 1 fails on purpose")
    with gc.distributed.DataParallel():
        m = make_model()
        m.fit(x, y, batch_size=BATCH, epochs=10_000, verbose=0,
              callbacks=[LambdaCallback(on_train_batch_end=on_batch_end)])


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    {"train": train, "resume": resume, "raise": lambda o: fail(o, "raise"),
     "kill": lambda o: fail(o, "kill")}[mode](out)
