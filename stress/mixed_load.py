"""Exactly once, in order: concurrent clients send requests of random sizes, plain, paired and
pre-tokenized; every reply is checked row by row against in-process encoding of that request alone.

    python stress/mixed_load.py -model_dir models/minilm -clients 8 -requests 12 -max_size 3000

Prints the requests and rows checked; exits 1 if a reply is missing, duplicated or wrong.
"""

import threading
import time

import numpy as np

from bert_serving.server.model.checkpoint import locate_model
from bert_serving.server.model.encoder import SentenceEncoder
from bert_serving.server.model.graph import GraphOptions, build_frozen_graph
from common import WORDS, Server, base_parser, random_sentences


def make_request(rng: np.random.Generator, max_size: int) -> tuple[list, bool]:
    """A request of 1..max_size rows: plain sentences, pairs, or pre-tokenized lists."""
    size = int(rng.integers(1, max_size + 1))
    kind = rng.choice(['plain', 'pairs', 'tokenized'])
    if kind == 'tokenized':
        return [list(rng.choice(WORDS, size=int(rng.integers(1, 20)))) for _ in range(size)], True
    sentences = random_sentences(rng, size)
    if kind == 'pairs':
        sentences = [f'{a} ||| {b}' for a, b in zip(sentences, random_sentences(rng, size))]
    return sentences, False


def run_client(server: Server, seed: int, requests: int, max_size: int, replies: dict, errors: list) -> None:
    rng = np.random.default_rng(seed)
    sent = {}
    try:
        with server.client(timeout=900_000) as client:  # correctness is checked here, not latency
            for _ in range(requests):
                texts, tokenized = make_request(rng, max_size)
                client.encode(texts, blocking=False, is_tokenized=tokenized)
                sent[client._request_id] = (texts, tokenized)
            received = [(response.id, response.embedding) for response in client.fetch()]
    except Exception as error:  # reported by the checker
        errors.append(f'client {seed}: {error!r}')
        return
    replies[seed] = (sent, received)


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument('-clients', type=int, default=8)
    parser.add_argument('-requests', type=int, default=12, help='requests per client')
    parser.add_argument('-max_size', type=int, default=3000)
    parser.add_argument('-log', default='/tmp/bert-serving-mixed-load.log')
    args = parser.parse_args()

    files = locate_model(args.model_dir)
    reference = SentenceEncoder(build_frozen_graph(files, GraphOptions()), files.vocab_path, 25)
    server = Server(args.model_dir, args.num_worker, args.server_option, args.log)
    replies, errors = {}, []
    started = time.monotonic()
    try:
        threads = [threading.Thread(target=run_client, args=(server, seed, args.requests, args.max_size, replies,
                                                             errors)) for seed in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.stop()

    checked_requests = checked_rows = 0
    worst = 0.0
    for seed, (sent, received) in sorted(replies.items()):
        ids = [request_id for request_id, _ in received]
        if sorted(ids) != sorted(sent):
            errors.append(f'client {seed}: sent {sorted(sent)} but got replies for {sorted(ids)}')
            continue
        for request_id, vectors in received:
            texts, tokenized = sent[request_id]
            expected, _ = reference.encode(texts, is_tokenized=tokenized)
            if vectors.shape != expected.shape:
                errors.append(f'client {seed} request {request_id}: shape {vectors.shape} != {expected.shape}')
                continue
            worst = max(worst, float(np.abs(vectors - expected).max()))
            checked_requests += 1
            checked_rows += len(texts)
    print(f'requests checked: {checked_requests}, rows checked: {checked_rows}, in {elapsed:.1f} s, '
          f'largest difference from in-process encoding: {worst:.2e}')
    if worst > 1e-5:
        errors.append(f'rows differ from in-process encoding by {worst:.2e} (> 1e-5)')
    for error in errors:
        print('ERROR', error)
    return 1 if errors else 0


if __name__ == '__main__':
    raise SystemExit(main())
