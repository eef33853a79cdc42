"""Encode three sentences, then measure how many sentences per second the server encodes.

    python example/1_simple_encode.py [--quick] [-port 5555 -port_out 5556]

Prints the shape of the vectors, then sentences/s for growing client batch sizes: small requests
spend their time on the round trip, large ones on the model, so throughput climbs with the batch.
"""

import itertools
import time

from common import bert_server, example_parser, load_topics


def sentences_per_second(client, texts: list[str], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        client.encode(texts)
    return repeats * len(texts) / (time.perf_counter() - start)


def main() -> None:
    options = example_parser(__doc__, quick='fewer and smaller batches').parse_args()
    batch_sizes, repeats = ([1, 16, 64], 2) if options.quick else ([1, 16, 256, 1024], 5)
    corpus = load_topics()[0]
    with bert_server(options) as server, server.client() as client:
        vectors = client.encode(['First do it', 'then do it right', 'then do it better'])
        print(f'encoded 3 sentences -> shape {vectors.shape}, dtype {vectors.dtype}')

        print('\nclient batch size   sentences/s')
        for size in batch_sizes:
            texts = list(itertools.islice(itertools.cycle(corpus), size))
            print(f'{size:>17}   {sentences_per_second(client, texts, repeats):11.1f}', flush=True)


if __name__ == '__main__':
    main()
