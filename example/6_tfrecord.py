"""Write sentence vectors to a TFRecord file and read them back with tf.data.

    python example/6_tfrecord.py [-out vectors.tfrecord] [-port 5555 -port_out 5556]

Encoding is the slow step, so encode once and store the vectors: each sentence becomes a
`tf.train.Example` with its vector, its text and its label. Reading parses the records back
into tensors, ready to batch and train on, and checks they equal what the server sent.
"""

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from common import bert_server, example_parser, load_topics


def to_example(vector: np.ndarray, text: str, label: str) -> bytes:
    feature = {
        'vector': tf.train.Feature(float_list=tf.train.FloatList(value=vector)),
        'text': tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()])),
        'label': tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def read_records(path: Path, dim: int) -> tf.data.Dataset:
    schema = {
        'vector': tf.io.FixedLenFeature([dim], tf.float32),
        'text': tf.io.FixedLenFeature([], tf.string),
        'label': tf.io.FixedLenFeature([], tf.string),
    }
    return tf.data.TFRecordDataset(str(path)).map(lambda record: tf.io.parse_single_example(record, schema))


def main() -> None:
    parser = example_parser(__doc__)
    parser.add_argument('-out', help='TFRecord file to write (default: one in a temporary folder)')
    options = parser.parse_args()
    sentences, labels = load_topics()
    with bert_server(options) as server, server.client() as client:
        vectors = client.encode(sentences)

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(options.out or Path(scratch) / 'vectors.tfrecord')
        with tf.io.TFRecordWriter(str(path)) as writer:
            for vector, text, label in zip(vectors, sentences, labels):
                writer.write(to_example(vector, text, label))
        print(f'wrote {len(sentences)} records of {vectors.shape[1]} floats to {path} '
              f'({path.stat().st_size} bytes)')

        dataset = read_records(path, vectors.shape[1]).batch(64)
        batches = list(dataset)
        print(f'read back {len(batches)} batches; first: vector {batches[0]["vector"].shape}, '
              f'text {batches[0]["text"].shape}, label {batches[0]["label"].shape}')
        read = np.concatenate([batch['vector'].numpy() for batch in batches])
        texts = [text.decode() for batch in batches for text in batch['text'].numpy()]
        print(f'vectors read back equal those encoded: {np.array_equal(read, vectors) and texts == sentences}')


if __name__ == '__main__':
    main()
