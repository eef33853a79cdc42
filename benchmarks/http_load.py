"""Load check of the HTTP proxy: N concurrent clients POST /encode for a while; errors, throughput, latency.

Start a server with its proxy first, e.g.::

    bert-serving-start -model_dir models/minilm -http_port 8125 -http_max_connect 32
    python benchmarks/http_load.py -url http://localhost:8125 -clients 32 -duration 60

Exits 1 when any request failed.
"""

import argparse
import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse

WORDS = ('the quick brown fox jumps over a lazy dog while sentence encoders map text to fixed length vectors '
         'served over sockets and http with batching across requests').split()


def make_sentences(rng: random.Random, count: int) -> list[str]:
    return [' '.join(rng.choices(WORDS, k=rng.randint(3, 20))) for _ in range(count)]


class Worker(threading.Thread):
    """One client on a keep-alive connection, sending until the deadline."""

    def __init__(self, url, batch_size, deadline, seed, headers):
        super().__init__(daemon=True)
        self.address = urllib.parse.urlsplit(url)
        self.batch_size, self.deadline, self.headers = batch_size, deadline, headers
        self.rng = random.Random(seed)
        self.latencies, self.errors = [], []

    def run(self):
        connection = None
        while time.monotonic() < self.deadline:
            body = json.dumps({'id': len(self.latencies), 'texts': make_sentences(self.rng, self.batch_size)})
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(self.address.hostname, self.address.port, timeout=120)
                connection.request('POST', '/encode', body, self.headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200 or len(json.loads(payload)['result']) != self.batch_size:
                    self.errors.append(f'HTTP {response.status}: {payload[:200]!r}')
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                self.errors.append(f'{type(error).__name__}: {error}')
                connection = None
            self.latencies.append(time.perf_counter() - started)
        if connection is not None:
            connection.close()


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-url', default='http://localhost:8125', help='base URL of the HTTP proxy')
    parser.add_argument('-clients', type=int, default=32, help='concurrent HTTP clients')
    parser.add_argument('-duration', type=float, default=60, help='seconds of load')
    parser.add_argument('-batch_size', type=int, default=8, help='sentences per request')
    parser.add_argument('-token', default=None, help='bearer token, when the proxy asks for one')
    args = parser.parse_args(argv)

    headers = {'Content-Type': 'application/json'}
    if args.token:
        headers['Authorization'] = f'Bearer {args.token}'
    warm_up = Worker(args.url, args.batch_size, time.monotonic() + 1, seed=-1, headers=headers)
    warm_up.run()  # in this thread: a second of requests before measuring
    if warm_up.errors:
        print(f'the proxy at {args.url} fails already: {warm_up.errors[0]}')
        return 1

    started = time.monotonic()
    workers = [Worker(args.url, args.batch_size, started + args.duration, seed, headers)
               for seed in range(args.clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started

    latencies = sorted(latency for worker in workers for latency in worker.latencies)
    errors = [error for worker in workers for error in worker.errors]
    print(f'{args.clients} clients x {elapsed:.1f} s against {args.url}/encode, {args.batch_size} sentences/request')
    print(f'requests: {len(latencies)}, errors: {len(errors)}' + (f' (first: {errors[0]})' if errors else ''))
    print(f'throughput: {len(latencies) / elapsed:.1f} requests/s, '
          f'{len(latencies) * args.batch_size / elapsed:.1f} sentences/s')
    print(f'latency: p50 {1000 * percentile(latencies, .5):.1f} ms, p99 {1000 * percentile(latencies, .99):.1f} ms, '
          f'mean {1000 * statistics.fmean(latencies):.1f} ms, max {1000 * latencies[-1]:.1f} ms')
    return 1 if errors else 0


if __name__ == '__main__':
    raise SystemExit(main())
