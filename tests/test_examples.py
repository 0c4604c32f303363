"""The examples, end to end at small scale: each script's ``main`` on a tiny MNIST-format copy of
scikit-learn's digits (8x8 images upscaled to 28x28, written as IDX .gz files), and the sequence
tagging task on short synthetic sequences. They check that each program learns, not the MNIST
targets (those are measured by running the examples themselves)."""
import gzip
import os
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")
sys.path.insert(0, EXAMPLES)


def _write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


@pytest.fixture(scope="module")
def digits_as_mnist(tmp_path_factory):
    """A folder with train-* (1,000 images) and t10k-* (300) IDX files made from the digits."""
    from graphc.datasets import digits
    (xtr, ytr), (xte, yte) = digits.load_data(test_size=0.2)
    (xtr, ytr), (xte, yte) = (xtr[:1000], ytr[:1000]), (xte[:300], yte[:300])

    def upscale(x):   # 8x8 in [0, 1] -> 24x24 -> padded to 28x28, uint8
        big = np.kron(x, np.ones((3, 3), np.float32))
        return np.pad(np.round(big * 255), ((0, 0), (2, 2), (2, 2))).astype(np.uint8)
    folder = tmp_path_factory.mktemp("mnist")
    _write_idx(folder / "train-images-idx3-ubyte.gz", upscale(xtr))
    _write_idx(folder / "train-labels-idx1-ubyte.gz", ytr)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", upscale(xte))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", yte)
    return str(folder)


def _run(module, argv, capsys):
    mod = __import__(module)
    acc, times = mod.main(argv)
    out = capsys.readouterr().out
    assert "held-out" in out and "time per epoch" in out
    assert len(times) >= 1 and all(t > 0 for t in times)
    return acc


def test_mnist_mlp_example(digits_as_mnist, capsys):
    acc = _run("mnist_mlp", ["--data", digits_as_mnist, "--epochs", "2", "--verbose", "0"], capsys)
    assert acc >= 0.85, acc


def test_mnist_cnn_example(digits_as_mnist, capsys):
    acc = _run("mnist_cnn", ["--data", digits_as_mnist, "--epochs", "1", "--verbose", "0"], capsys)
    assert acc >= 0.75, acc


def test_mnist_lstm_example_model_on_digit_rows():
    """The row-LSTM of mnist_lstm.py over the 8 rows of the 8x8 digits (a 28-step unroll costs
    seconds of compile time; the script's main is the same as the MLP's)."""
    import mnist_lstm
    from graphc.datasets import digits
    from graphc.utils import set_random_seed, to_categorical
    set_random_seed(0)
    (xtr, ytr), (xte, yte) = digits.load_data()
    model = mnist_lstm.build_model(units=32, timesteps=8, features=8)
    model.optimizer.learning_rate = 0.005
    hist = model.fit(xtr, to_categorical(ytr, 10), epochs=4, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    _, acc = model.evaluate(xte, to_categorical(yte, 10), verbose=0)
    assert acc >= 0.8, acc


def test_transformer_example(digits_as_mnist, capsys):
    acc = _run("transformer_classifier", ["--data", digits_as_mnist, "--epochs", "2",
                                          "--verbose", "0", "--lr", "3e-3"], capsys)
    assert acc >= 0.5, acc


def test_data_dir_from_environment(digits_as_mnist, configure):
    import _common
    configure(data_dir=digits_as_mnist)
    assert _common.data_path(None) is None          # mnist.load_data reads $GRAPHC_DATA
    (x, y), (xt, yt) = _common.load_mnist(None, shape=(28, 28, 1))
    assert x.shape[1:] == (28, 28, 1) and y.shape == (len(x), 10) and x.dtype == np.float32
    assert (len(x), len(xt)) == (1000, 300)
    assert 0.0 <= x.min() and x.max() <= 1.0
    configure(data_dir=None)
    assert _common.data_path(None) is None          # ... else the MNIST test set installed with graphc
    (x, y), (xt, yt) = _common.load_mnist(None, shape=(784,), one_hot=False)
    assert x.shape == (8000, 784) and xt.shape == (2000, 784) and set(y.tolist()) == set(range(10))


def test_sequence_tagging_learns_across_lengths():
    import sequence_tagging as st
    from graphc.utils import set_random_seed
    set_random_seed(0)
    rng = np.random.default_rng(0)
    groups = st.make_data(600, [4, 7], rng)
    held_out = st.make_data(200, [4, 7, 9], rng)     # 9: a length never trained on
    model = st.build_model(units=32, lr=0.01)
    before, _ = st.token_accuracy(model, held_out)
    times = st.train(model, groups, epochs=3, batch_size=32, rng=rng, verbose=0)
    acc, per = st.token_accuracy(model, held_out)
    assert len(times) == 3 and set(per) == {4, 7, 9}
    assert acc > max(before, 0.1) + 0.25, (before, acc, per)
    assert model.predict(held_out[0][0][:3]).shape == held_out[0][0][:3].shape[:2] + (10,)
