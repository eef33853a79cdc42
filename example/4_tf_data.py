"""Use BertClient inside a tf.data pipeline: sentences go in, batches of vectors come out.

    python example/4_tf_data.py [-port 5555 -port_out 5556]

`tf.py_function` calls the client from the pipeline; with `num_parallel_calls` several batches are
encoded at once, each by its own client of a `ConcurrentBertClient` pool (a plain BertClient must
not be shared between threads, and tf.data runs the map function on several). The vectors then
flow on like any tensor: here into a per-label sum, as a training loop would consume them.
"""

import time

import numpy as np
import tensorflow as tf

from common import bert_server, example_parser, load_topics

BATCH_SIZE = 32
PARALLEL = 4


def main() -> None:
    options = example_parser(__doc__).parse_args()
    sentences, labels = load_topics()
    names = sorted(set(labels))
    label_ids = [names.index(label) for label in labels]

    with bert_server(options) as server, server.pool(max_concurrency=PARALLEL) as pool:
        dim = pool.encode(['probe'])[0].size

        def encode(texts: tf.Tensor) -> np.ndarray:
            return pool.encode([text.decode() for text in texts.numpy()])

        def to_vectors(texts, label):
            vectors = tf.py_function(encode, [texts], tf.float32)
            return tf.ensure_shape(vectors, [None, dim]), label  # py_function forgets the shape

        dataset = (tf.data.Dataset.from_tensor_slices((sentences, label_ids))
                   .shuffle(len(sentences), seed=0)
                   .batch(BATCH_SIZE)
                   .map(to_vectors, num_parallel_calls=PARALLEL)
                   .prefetch(tf.data.AUTOTUNE))

        start = time.perf_counter()
        sums, counts = np.zeros((len(names), dim)), np.zeros(len(names))
        for step, (vectors, batch_labels) in enumerate(dataset):
            if step == 0:
                print(f'first batch: vectors {vectors.shape} {vectors.dtype.name}, labels {batch_labels.shape}')
            np.add.at(sums, batch_labels.numpy(), vectors.numpy())
            np.add.at(counts, batch_labels.numpy(), 1)
        elapsed = time.perf_counter() - start
        print(f'{step + 1} batches, {int(counts.sum())} sentences in {elapsed:.2f} s '
              f'({counts.sum() / elapsed:.0f} sentences/s through tf.data)')

    centroids = sums / counts[:, None]
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    print('cosine similarity of the label centroids:')
    print('            ' + ' '.join(f'{name[:10]:>10}' for name in names))
    for name, row in zip(names, centroids @ centroids.T):
        print(f'{name[:10]:>10}  ' + ' '.join(f'{value:10.3f}' for value in row))


if __name__ == '__main__':
    main()
