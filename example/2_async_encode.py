"""Encode a stream of batches with `encode_async`: a background thread sends while you receive.

    python example/2_async_encode.py [-port 5555 -port_out 5556]

A generator yields batches of sentences; `encode_async` sends them from a background thread and
yields each result as it arrives, so the server always has work queued. Results may arrive out of
order: each carries the `id` of its request, which is how the script puts them back in order.
"""

import itertools

import numpy as np

from common import bert_server, example_parser, load_topics

BATCH_SIZE = 16
NUM_BATCHES = 12


def batches(sentences: list[str]):
    """An endless stream of batches, as a reader of a large file would produce."""
    stream = itertools.cycle(sentences)
    while True:
        yield list(itertools.islice(stream, BATCH_SIZE))


def main() -> None:
    options = example_parser(__doc__).parse_args()
    sentences = load_topics()[0]
    with bert_server(options) as server, server.client() as client:
        results = {}
        for response in client.encode_async(batches(sentences), max_num_batch=NUM_BATCHES):
            results[response.id] = response.embedding
            print(f'request {response.id:>2}: {response.embedding.shape}', flush=True)
        vectors = np.concatenate([results[i] for i in sorted(results)])
        print(f'received {len(results)} batches in all -> {vectors.shape}')

        # The stream cycles over the sentences, so the first rows must match a blocking encode.
        expected = client.encode(sentences[:BATCH_SIZE])
        print(f'first batch matches a blocking encode: {np.allclose(vectors[:BATCH_SIZE], expected, atol=1e-5)}')


if __name__ == '__main__':
    main()
