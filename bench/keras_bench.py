"""Keras counterpart of bench/train-backend.ts: same architectures, batch size and thread count. Prints one JSON line."""
import json
import os
import sys
import time

architecture, samples, batch_size, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
keras = tf.keras
layers = keras.layers

rng = np.random.default_rng(1)
xs = rng.random((samples, 28, 28, 1), dtype=np.float32)
ys = keras.utils.to_categorical(rng.integers(0, 10, samples), 10)

model = keras.Sequential([keras.Input((28, 28, 1))])
if architecture == "cnn":
    for filters in (32, 64):
        model.add(layers.Conv2D(filters, 3, padding="same", activation="relu"))
        model.add(layers.MaxPooling2D(2))
    model.add(layers.Flatten())
    hidden = (128,)
else:
    model.add(layers.Flatten())
    hidden = (256, 128)
for units in hidden:
    model.add(layers.Dense(units, activation="relu"))
    model.add(layers.Dropout(0.2))
model.add(layers.Dense(10, activation="softmax"))
model.compile(optimizer=keras.optimizers.Adam(0.001), loss="categorical_crossentropy", metrics=["accuracy"])

model.fit(xs[: batch_size * 4], ys[: batch_size * 4], batch_size=batch_size, epochs=1, verbose=0)
epoch_seconds = []
for _ in range(3):
    start = time.perf_counter()
    model.fit(xs, ys, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
    epoch_seconds.append(time.perf_counter() - start)
train_seconds = sorted(epoch_seconds)[1]


def latency(batch, repeats):
    data = xs[:batch]
    for _ in range(3):
        model(data, training=False).numpy()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model(data, training=False).numpy()
        times.append((time.perf_counter() - t) * 1000)
    return sorted(times)[len(times) // 2]


print(json.dumps({
    "runtime": "keras",
    "architecture": architecture,
    "samples": samples,
    "batchSize": batch_size,
    "trainSamplesPerSecond": samples / train_seconds,
    "latencyBatch1Ms": latency(1, 200),
    "latencyBatch256Ms": latency(256, 20),
}))
