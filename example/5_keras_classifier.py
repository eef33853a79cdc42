"""Train a Keras text classifier on sentence vectors and report its accuracy on held-out sentences.

    python example/5_keras_classifier.py [--quick] [-port 5555 -port_out 5556]

The bundled data set (example/data/topics.tsv) has 240 sentences about sports, food, technology
and the weather. The server turns each into a vector once; a small dense network learns the topic
from the vectors (BERT itself stays frozen), trained on 75 % of the sentences and tested on the
rest. The original example used `tf.estimator`, which TensorFlow 2.16+ no longer has.
"""

import numpy as np
import tensorflow as tf

from common import bert_server, example_parser, load_topics


def split(num_rows: int, test_share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(num_rows)
    num_test = int(num_rows * test_share)
    return order[num_test:], order[:num_test]


def classifier(dim: int, num_classes: int) -> tf.keras.Model:
    model = tf.keras.Sequential([
        tf.keras.Input(shape=(dim,)),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(64, activation='relu'),
        tf.keras.layers.Dense(num_classes, activation='softmax'),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    return model


def main() -> None:
    options = example_parser(__doc__, quick='train for fewer epochs').parse_args()
    sentences, labels = load_topics()
    names = sorted(set(labels))
    y = np.array([names.index(label) for label in labels])
    new_sentences = ['The goalkeeper dived to his left.', 'Bake the bread for half an hour.',
                     'The update broke the wireless driver.', 'It will be windy and wet tomorrow.']
    with bert_server(options) as server, server.client() as client:
        x, new_x = client.encode(sentences), client.encode(new_sentences)
    print(f'encoded {len(sentences)} labelled sentences -> {x.shape}')

    tf.keras.utils.set_random_seed(0)
    train, test = split(len(y), test_share=0.25)
    model = classifier(x.shape[1], len(names))
    model.fit(x[train], y[train], epochs=20 if options.quick else 60, batch_size=16, verbose=0)
    loss, accuracy = model.evaluate(x[test], y[test], verbose=0)
    print(f'test accuracy: {accuracy:.3f} on {len(test)} sentences '
          f'({len(names)} classes, chance {1 / len(names):.2f})')
    for sentence, index in zip(new_sentences, model.predict(new_x, verbose=0).argmax(axis=1)):
        print(f'  {names[index]:>10} <- {sentence}')


if __name__ == '__main__':
    main()
