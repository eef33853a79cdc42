"""Soak: mixed clients for a fixed time; prints requests served, errors and the server's memory.

    python stress/soak.py -model_dir models/minilm -seconds 600

Goals: no errors, and resident memory at the end within 5% of what it was after warm-up.
"""

import threading
import time

import numpy as np

from common import WORDS, Server, base_parser, random_sentences


def client_loop(server: Server, seed: int, until: float, counts: dict, lock: threading.Lock) -> None:
    """One client: single sentences, batches, pairs, pre-tokenized, async bursts, reconnects."""
    rng = np.random.default_rng(seed)
    while time.monotonic() < until:
        try:
            with server.client() as client:  # a fresh connection now and then, as real scripts do
                for _ in range(int(rng.integers(5, 30))):
                    style = int(rng.integers(0, 4))
                    if style == 0:
                        client.encode(random_sentences(rng, 1))
                    elif style == 1:
                        client.encode(random_sentences(rng, int(rng.integers(2, 400))))
                    elif style == 2:
                        client.encode([list(rng.choice(WORDS, size=5)) for _ in range(20)], is_tokenized=True)
                    else:
                        batches = [random_sentences(rng, 8) for _ in range(5)]
                        assert len(list(client.encode_async(iter(batches), max_num_batch=5))) == 5
                    with lock:
                        counts['served'] += 1
                    if time.monotonic() >= until:
                        break
        except Exception as error:
            with lock:
                counts['errors'] += 1
                counts['messages'].append(repr(error))


def report_memory(server: Server, elapsed: float) -> None:
    """One line: the time, the server's resident memory, and each process's (to tell growth from a plateau)."""
    sizes = server.rss_by_process_mb()
    each = ', '.join(f'{pid}: {size:.0f}' for pid, size in sorted(sizes.items()))
    print(f'{elapsed:6.0f} s  RSS {sum(sizes.values()):.0f} MiB  ({each})', flush=True)


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument('-seconds', type=float, default=600)
    parser.add_argument('-clients', type=int, default=6)
    parser.add_argument('-warmup', type=float, default=30, help='seconds of load before the first memory reading')
    parser.add_argument('-report_every', type=float, default=60, help='seconds between two memory lines')
    parser.add_argument('-log', default='/tmp/bert-serving-soak.log')
    args = parser.parse_args()

    server = Server(args.model_dir, args.num_worker, args.server_option, args.log)
    counts, lock = {'served': 0, 'errors': 0, 'messages': []}, threading.Lock()
    started = time.monotonic()
    until = started + args.warmup + args.seconds
    threads = [threading.Thread(target=client_loop, args=(server, seed, until, counts, lock))
               for seed in range(args.clients)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(args.warmup)
        rss_start = server.rss_mb()
        while time.monotonic() < until:
            time.sleep(min(args.report_every, max(0.0, until - time.monotonic())))
            report_memory(server, time.monotonic() - started)
        for thread in threads:
            thread.join()
        rss_end = server.rss_mb()
    finally:
        server.stop()
    code = server.process.exitcode
    growth = (rss_end - rss_start) / rss_start
    print(f'soak of {args.seconds:.0f} s (+{args.warmup:.0f} s warm-up), {args.clients} clients: '
          f'{counts["served"]} requests served, {counts["errors"]} errors')
    print(f'server RSS after warm-up {rss_start:.0f} MiB, at the end {rss_end:.0f} MiB ({growth:+.1%}); '
          f'server exit code {code}')
    for message in counts['messages'][:10]:
        print('ERROR', message)
    return 1 if counts['errors'] or growth > 0.05 or code != 0 else 0


if __name__ == '__main__':
    raise SystemExit(main())
