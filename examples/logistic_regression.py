"""Logistic regression, p = sigmoid(Wx + b), trained with the TensorFlow-1-style API.

Draws labels from a known logistic model, fits W and b by minimizing the
cross-entropy with Adam (``gc.optimizers.Adam``), and prints the learned
parameters next to the true ones, plus the training accuracy.

    python examples/logistic_regression.py
"""
import numpy as np

import graphc as gc
import graphc.optimizers  # noqa: F401  (gc.optimizers)


def main(steps: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    true_w = np.array([[1.5], [-2.0], [0.75]], np.float32)
    true_b = np.array([-0.5], np.float32)
    X = rng.normal(size=(2000, 3)).astype(np.float32)
    p_true = 1.0 / (1.0 + np.exp(-(X @ true_w + true_b)))
    Y = (rng.random(p_true.shape) < p_true).astype(np.float32)

    x = gc.placeholder("float32", (None, 3), name="x")
    y = gc.placeholder("float32", (None, 1), name="y")
    w = gc.Variable(np.zeros((3, 1), np.float32), name="W")
    b = gc.Variable(np.zeros(1, np.float32), name="b")
    p = gc.sigmoid(gc.matmul(x, w) + b)
    loss = -gc.reduce_mean(y * gc.log(p + 1e-7) + (1 - y) * gc.log(1 - p + 1e-7))
    accuracy = gc.reduce_mean(gc.cast(gc.equal(gc.cast(p > 0.5, "float32"), y), "float32"))
    train = gc.optimizers.Adam(learning_rate=0.05).minimize(loss)
    init = gc.global_variables_initializer()  # after minimize: also initializes Adam's slots

    with gc.Session() as sess:
        sess.run(init)
        for step in range(steps):
            _, l = sess.run([train, loss], feed_dict={x: X, y: Y})
            if step % 100 == 0:
                print(f"step {step:4d}  loss {l:.5f}")
        learned_w, learned_b, final, acc = sess.run([w, b, loss, accuracy], feed_dict={x: X, y: Y})

    print(f"final loss {final:.5f}  accuracy {acc:.3f}")
    print("parameter   learned     true")
    for i in range(3):
        print(f"W[{i}]     {learned_w[i, 0]:9.4f} {true_w[i, 0]:9.4f}")
    print(f"b        {learned_b[0]:9.4f} {true_b[0]:9.4f}")
    return learned_w, learned_b, true_w, true_b


if __name__ == "__main__":
    main()
