"""The functional LSTM seed on a synthetic tagging task with sequences of varying length.

    python examples/sequence_tagging.py [--epochs 8] [--samples 4000] [--lengths 5-60]

    inputs = Input(shape=(None, 100))
    x = LSTM(64, return_sequences=True)(inputs)
    outputs = Dense(10, activation="softmax")(x)
    model = Model(inputs=inputs, outputs=outputs)

Each token is one of 100 symbols (a one-hot row of 100 features plus a little noise). The tag of
token ``t`` is ``s_t % 5 + 5 * (s_{t-1} >= 50)`` (the first token has no predecessor: the upper bit
is 0), so a model without memory cannot exceed about 55% per-token accuracy while the rule is exactly
learnable. Sequences have lengths 5..20 (``--lengths 5-60``: every length in that range); a batch
holds sequences of one length. The time axis is ``None`` in the model and the LSTM runs on ``scan``,
so graphc builds one training program for every length (the run prints how many programs it built
and how many kernels it compiled). Held-out sequences include a length never seen in training (25).
Prints per-token accuracy per length and the time per epoch.
"""
import time

import numpy as np
from _common import mean_after_first, parser, seed_all

from graphc.layers import LSTM, Dense, Input
from graphc.models import Model
from graphc.optimizers import Adam

N_SYMBOLS, N_TAGS = 100, 10


def make_data(n, lengths, rng, noise=0.1):
    """``n`` sequences with lengths drawn from ``lengths``: a list of (x, y) arrays, one per length."""
    out = []
    counts = np.bincount(rng.integers(len(lengths), size=n), minlength=len(lengths))
    for length, k in zip(lengths, counts):
        if k == 0:
            continue
        s = rng.integers(N_SYMBOLS, size=(k, length))
        x = np.eye(N_SYMBOLS, dtype=np.float32)[s] + noise * rng.standard_normal(
            (k, length, N_SYMBOLS)).astype(np.float32)
        prev_hi = np.zeros_like(s)
        prev_hi[:, 1:] = s[:, :-1] >= N_SYMBOLS // 2
        out.append((x, (s % 5 + 5 * prev_hi).astype(np.int32)))
    return out


def build_model(units=64, features=N_SYMBOLS, tags=N_TAGS, lr=0.005):
    inputs = Input(shape=(None, features))
    x = LSTM(units, return_sequences=True)(inputs)
    outputs = Dense(tags, activation="softmax")(x)
    model = Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=Adam(learning_rate=lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def batches(groups, batch_size, rng):
    """Shuffled batches; each batch holds sequences of a single length."""
    out = []
    for x, y in groups:
        perm = rng.permutation(len(x))
        for lo in range(0, len(x), batch_size):
            idx = perm[lo:lo + batch_size]
            out.append((x[idx], y[idx]))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def train(model, groups, epochs, batch_size, rng, verbose=1):
    """Train with ``train_on_batch`` over length-bucketed batches; returns the epoch times."""
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        tot = np.zeros(2)
        n = 0
        for xb, yb in batches(groups, batch_size, rng):
            loss, acc = model.train_on_batch(xb, yb)
            tot += np.array([loss, acc]) * yb.size
            n += yb.size
        times.append(time.perf_counter() - t0)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs} - {times[-1]:.2f}s - loss: {tot[0] / n:.4f} - "
                  f"token accuracy: {tot[1] / n:.4f}")
    return times


def token_accuracy(model, groups):
    """Per-token accuracy over all groups and per length: (overall, {length: acc})."""
    per, hit, tot = {}, 0, 0
    for x, y in groups:
        pred = model.predict(x, batch_size=64).argmax(-1)
        per[x.shape[1]] = float((pred == y).mean())
        hit += int((pred == y).sum())
        tot += y.size
    return hit / tot, per


def main(argv=None):
    ap = parser(__doc__, epochs=8)
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--lengths", default="5,8,12,16,20",
                    help="training lengths: a list (5,8,12) or a range (5-60)")
    args = ap.parse_args(argv)
    seed_all(args.seed)
    rng = np.random.default_rng(args.seed)
    lo, _, hi = args.lengths.partition("-")
    train_lengths = list(range(int(lo), int(hi) + 1)) if hi else [int(v) for v in args.lengths.split(",")]
    groups = make_data(args.samples, train_lengths, rng)
    held_out = make_data(1000, train_lengths + [25], rng)
    model = build_model(lr=args.lr)
    times = train(model, groups, args.epochs, args.batch_size, rng, verbose=args.verbose)
    acc, per = token_accuracy(model, held_out)
    print(f"held-out per-token accuracy: {acc:.4f} (by length: " +
          ", ".join(f"{k}: {v:.3f}" for k, v in sorted(per.items())) + ")")
    print("time per epoch: " + ", ".join(f"{t:.3f}s" for t in times) +
          f" (mean after the first: {mean_after_first(times):.3f}s)")
    from graphc.runtime import STATS
    kinds = [k[0] for k in model._programs]
    print(f"programs built: {kinds.count('train')} training, {kinds.count('predict')} predict, for "
          f"{len(train_lengths)} training lengths; kernels compiled {STATS['compiled']}, loaded "
          f"{STATS['loaded']}")
    return acc, times


if __name__ == "__main__":
    main()
