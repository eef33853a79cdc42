"""The `make demo` tour: start a server with 2 workers, encode sentences, rank FAQ questions, stop.

    python example/demo.py -model_dir models/minilm

Starts its own server on two free local ports and shuts it down at the end.
"""

import argparse

import numpy as np

from bert_serving.client import BertClient
from bert_serving.server import BertServer, get_args_parser
from bert_serving.server.benchmark import free_port

SEED_SENTENCES = ['First do it', 'then do it right', 'then do it better']

FAQ = [
    'How do I start the server on a GPU?',
    'Can I use a model fine-tuned on my own data?',
    'Why does the client hang when the server is not running?',
    'How long may a sentence be?',
    'Can several clients use one server at the same time?',
    'How do I get one vector per token instead of per sentence?',
    'Does the old bert-serving-client 1.10.0 still work?',
    'How do I call the server over HTTP?',
]

QUERIES = ['is my old client compatible?', 'run it with a graphics card', 'vectors for every word']


def normalize(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-model_dir', default='models/minilm')
    parser.add_argument('-num_worker', type=int, default=2)
    options = parser.parse_args()
    port, port_out = free_port(), free_port()
    args = get_args_parser().parse_args(['-model_dir', options.model_dir, '-num_worker', str(options.num_worker),
                                         '-port', str(port), '-port_out', str(port_out), '-bind', '127.0.0.1'])
    with BertServer(args):
        with BertClient(port=port, port_out=port_out, timeout=60_000) as client:
            vectors = client.encode(SEED_SENTENCES)
            print(f'\nencoded {len(SEED_SENTENCES)} sentences -> {vectors.shape} {vectors.dtype}')
            for sentence, vector in zip(SEED_SENTENCES, vectors):
                print(f'  {sentence!r:22} {np.array2string(vector[:4], precision=3)} ...')

            faq = normalize(client.encode(FAQ))
            print(f'\nencoded {len(FAQ)} FAQ questions -> {faq.shape}')
            for query, vector in zip(QUERIES, normalize(client.encode(QUERIES))):
                scores = faq @ vector
                print(f'\nquery: {query!r}')
                for rank, index in enumerate(np.argsort(-scores)[:3], 1):
                    print(f'  {rank}. {scores[index]:.3f}  {FAQ[index]}')
    print('\nserver stopped; demo done')


if __name__ == '__main__':
    main()
