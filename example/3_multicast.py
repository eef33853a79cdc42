"""Multicast: clients that share an identity all receive every result sent to it.

    python example/3_multicast.py [-port 5555 -port_out 5556]

One client encodes; two clones, created in their own threads with the same `identity`, `listen()`
and receive the same vectors, e.g. to log, cache or monitor what a service computes without
asking the server twice.
"""

import threading

import numpy as np

from common import bert_server, example_parser, load_topics

NUM_CLONES = 2
NUM_REQUESTS = 3


def clone(server, identity: bytes, index: int, ready: threading.Barrier, received: list) -> None:
    """A client with the sender's identity that keeps what it hears until it has every result."""
    with server.client(identity=identity) as client:  # one client per thread
        ready.wait()
        for response in client.listen():
            # one write per line, so that the threads' lines do not interleave
            print(f'clone {index}: received request {response.id}, {response.embedding.shape}\n', end='', flush=True)
            received.append(response.embedding)
            if len(received) == NUM_REQUESTS:
                return


def main() -> None:
    options = example_parser(__doc__).parse_args()
    sentences = load_topics()[0]
    with bert_server(options) as server, server.client() as sender:
        ready = threading.Barrier(NUM_CLONES + 1)  # send only once every clone is subscribed
        received = [[] for _ in range(NUM_CLONES)]
        threads = [threading.Thread(target=clone, args=(server, sender.identity, i, ready, received[i]))
                   for i in range(NUM_CLONES)]
        for thread in threads:
            thread.start()
        ready.wait(timeout=60)  # a clone that cannot connect breaks the barrier instead of hanging here
        sent = [sender.encode(sentences[10 * i:10 * i + 5]) for i in range(NUM_REQUESTS)]
        print(f'sender: encoded {NUM_REQUESTS} requests of {sent[0].shape}')
        for thread in threads:
            thread.join()
        for index, vectors in enumerate(received):
            same = len(vectors) == NUM_REQUESTS and all(np.array_equal(a, b) for a, b in zip(sent, vectors))
            print(f'clone {index} received the same {len(vectors)} results as the sender: {same}')


if __name__ == '__main__':
    main()
