"""Compare pooling layers and strategies: sentence vectors reduced to 2-D with PCA, saved as a PNG.

    python example/7_pooling_plot.py [-out pooling.png] [-port 5555 -port_out 5556]

Which layer and which pooling give the most useful sentence vectors? One server started with
`-pooling_strategy NONE -show_tokens_to_client` and several `-pooling_layer`s returns every token's
vector of every chosen layer; this script pools them itself the way the server's strategies do
(REDUCE_MEAN, REDUCE_MAX, CLS_TOKEN, SEP_TOKEN), so one encoding pass covers every combination.
Each panel plots the bundled topic sentences after PCA, one colour per topic, and prints how often
a sentence is closest to its own topic's centroid. A running server given with -port must have
been started with those options.
"""

import matplotlib
import numpy as np

from common import bert_server, example_parser, load_topics

matplotlib.use('Agg')  # write files, no window
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

LAYERS = ['-1', '-2', '-4', '-6']  # MiniLM has 6 layers: -6 is the first, -1 the last
SERVER_OPTIONS = ['-pooling_strategy', 'NONE', '-show_tokens_to_client', '-pooling_layer', *LAYERS]
STRATEGIES = ['REDUCE_MEAN', 'REDUCE_MAX', 'CLS_TOKEN', 'SEP_TOKEN']


def pool(tokens: np.ndarray, lengths: np.ndarray, strategy: str) -> np.ndarray:
    """``[n, seq, dim]`` token vectors -> ``[n, dim]``, over each sentence's first ``length`` tokens."""
    mask = (np.arange(tokens.shape[1])[None, :] < lengths[:, None])[..., None]
    if strategy == 'REDUCE_MEAN':
        return (tokens * mask).sum(axis=1) / mask.sum(axis=1)
    if strategy == 'REDUCE_MAX':
        return np.where(mask, tokens, -np.inf).max(axis=1)
    if strategy == 'CLS_TOKEN':
        return tokens[:, 0]
    if strategy == 'SEP_TOKEN':
        return tokens[np.arange(len(tokens)), lengths - 1]
    raise ValueError(strategy)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T


def centroid_accuracy(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Share of sentences whose nearest topic centroid (cosine) is their own topic's."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    centroids = np.stack([unit[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    return float(((unit @ centroids.T).argmax(axis=1) == labels).mean())


def encode_layers(server, sentences: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The server's layers, its token vectors ``[n, seq, layers * dim]`` and each sentence's token count."""
    with server.client() as client:
        config = client.server_config
        if config['pooling_strategy'] != 'NONE' or not config['show_tokens_to_client']:
            raise SystemExit(f'this example needs a server started with {" ".join(SERVER_OPTIONS)}')
        vectors, tokens = client.encode(sentences, show_tokens=True)
    return [str(layer) for layer in config['pooling_layer']], vectors, np.array([len(t) for t in tokens])


def main() -> None:
    parser = example_parser(__doc__)
    parser.add_argument('-out', default='pooling.png', help='PNG to write (default: %(default)s)')
    options = parser.parse_args()
    sentences, topic_names = load_topics()
    names = sorted(set(topic_names))
    labels = np.array([names.index(name) for name in topic_names])
    with bert_server(options, *SERVER_OPTIONS) as server:
        layers, vectors, lengths = encode_layers(server, sentences)
    print(f'token vectors of layers {" ".join(layers)}: {vectors.shape}')
    per_layer = np.split(vectors, len(layers), axis=-1)  # the server concatenates the layers

    figure, axes = plt.subplots(len(layers), len(STRATEGIES), figsize=(3.2 * len(STRATEGIES), 3 * len(layers)),
                                squeeze=False)
    print(f'nearest-centroid accuracy   {"  ".join(f"{s:>11}" for s in STRATEGIES)}')
    for row, (layer, tokens) in enumerate(zip(layers, per_layer)):
        scores = []
        for column, strategy in enumerate(STRATEGIES):
            pooled = pool(tokens, lengths, strategy)
            scores.append(centroid_accuracy(pooled, labels))
            points, axis = pca_2d(pooled), axes[row, column]
            for k, name in enumerate(names):
                axis.scatter(*points[labels == k].T, s=6, label=name)
            axis.set_title(f'layer {layer}, {strategy}\ncentroid accuracy {scores[-1]:.2f}', fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
        print(f'layer {layer:>3}                   {"  ".join(f"{s:11.3f}" for s in scores)}')
    axes[0, 0].legend(fontsize=7, loc='best')
    figure.tight_layout()
    figure.savefig(options.out, dpi=80)
    print(f'plot saved to {options.out}')


if __name__ == '__main__':
    main()
