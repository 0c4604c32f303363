"""Linear regression, y = Wx + b, trained with the TensorFlow-1-style API.

Generates noisy data from known W and b, fits them by minimizing the mean
squared error with gradient descent (``gc.optimizers.SGD``), and prints the
learned parameters next to the true ones.

    python examples/linear_regression.py
"""
import numpy as np

import graphc as gc
import graphc.optimizers  # noqa: F401  (gc.optimizers)


def main(steps: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    true_w = np.array([[2.0], [-3.5], [0.5]], np.float32)
    true_b = np.array([1.25], np.float32)
    X = rng.normal(size=(256, 3)).astype(np.float32)
    Y = (X @ true_w + true_b + 0.05 * rng.normal(size=(256, 1))).astype(np.float32)

    x = gc.placeholder("float32", (None, 3), name="x")
    y = gc.placeholder("float32", (None, 1), name="y")
    w = gc.Variable(np.zeros((3, 1), np.float32), name="W")
    b = gc.Variable(np.zeros(1, np.float32), name="b")
    pred = gc.matmul(x, w) + b
    loss = gc.reduce_mean(gc.square(pred - y))
    train = gc.optimizers.SGD(learning_rate=0.1).minimize(loss)
    init = gc.global_variables_initializer()  # after minimize: also initializes the optimizer's slots

    with gc.Session() as sess:
        sess.run(init)
        for step in range(steps):
            _, l = sess.run([train, loss], feed_dict={x: X, y: Y})
            if step % 100 == 0:
                print(f"step {step:4d}  loss {l:.5f}")
        learned_w, learned_b, final = sess.run([w, b, loss], feed_dict={x: X, y: Y})

    print(f"final loss {final:.5f}")
    print("parameter   learned     true")
    for i in range(3):
        print(f"W[{i}]     {learned_w[i, 0]:9.4f} {true_w[i, 0]:9.4f}")
    print(f"b        {learned_b[0]:9.4f} {true_b[0]:9.4f}")
    return learned_w, learned_b, true_w, true_b


if __name__ == "__main__":
    main()
