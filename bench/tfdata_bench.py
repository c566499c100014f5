"""tf.data counterpart of bench/preprocess.ts: Keras' image_dataset_from_directory on a class-folder tree, rescaled to
[0, 1], prefetched and iterated to the end with tf.data's defaults (every core). Prints one JSON line.

    tfdata_bench.py <root> <height> <width> <channels 1|3> <batch size>
"""
import json
import os
import sys
import time

root, height, width, channels, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

rescale = tf.keras.layers.Rescaling(1 / 255)
# The clock starts before the listing, as the workflow's does: listing the tree is part of the work on both sides.
start = time.perf_counter()
cpu_start = time.process_time()
dataset = tf.keras.utils.image_dataset_from_directory(
    root,
    image_size=(height, width),
    color_mode="grayscale" if channels == 1 else "rgb",
    batch_size=batch_size,
    shuffle=False,
    verbose=False,
)
dataset = dataset.map(lambda images, labels: (rescale(images), labels), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
images = 0
for batch, _ in dataset:
    images += int(batch.shape[0])
seconds = time.perf_counter() - start
cpu_seconds = time.process_time() - cpu_start
print(json.dumps({"images": images, "seconds": seconds, "cpuSeconds": cpu_seconds}))
