"""Hostile input: thousands of malformed requests, with a real client checking results in between.

    python stress/fuzz.py -model_dir models/minilm -messages 10000

Malformed means: wrong frame counts, random bytes, invalid UTF-8, huge frames, negative or
non-numeric ids, JSON of the wrong type, and control commands with forged framing. (A
well-formed TERMINATION is a legitimate command of the protocol and is not sent: keep the
port private with `-bind 127.0.0.1` or require client keys, see the README.)
The server must stay up, the interleaved client must get correct vectors every time, and
the server's memory must stay flat. Exits 1 otherwise.
"""

import json
import time

import numpy as np
import zmq

from common import Server, base_parser, random_sentences

CONTROL = [b'SHOW_CONFIG', b'SHOW_STATUS', b'TERMINATION']


def malformed(rng: np.random.Generator) -> list[bytes]:
    """One malformed multipart request."""
    identity = bytes(rng.integers(0, 256, size=int(rng.integers(0, 40)), dtype=np.uint8))
    kind = int(rng.integers(0, 9))
    random_bytes = bytes(rng.integers(0, 256, size=int(rng.integers(0, 200)), dtype=np.uint8))
    if kind == 0:  # wrong number of frames
        return [random_bytes] * int(rng.choice([1, 2, 3, 5, 6, 9]))
    if kind == 1:  # random payload
        return [identity, random_bytes, b'1', b'1']
    if kind == 2:  # invalid UTF-8 inside JSON-looking bytes
        return [identity, b'["\xff\xfe\xfd"]', b'2', b'1']
    if kind == 3:  # a huge frame
        return [identity, b'["' + b'a' * int(rng.integers(100_000, 2_000_000)) + b'"', b'3', b'1']
    if kind == 4:  # negative, non-numeric or enormous ids and lengths
        bad_number = [b'-1', b'abc', b'1e9', b'', b'9' * 40, b'0x10'][int(rng.integers(0, 6))]
        return [identity, b'["hello"]', bad_number, b'1'] if rng.random() < 0.5 else \
            [identity, b'["hello"]', b'4', bad_number]
    if kind == 5:  # JSON of the wrong type
        payloads = [b'{"texts": ["a"]}', b'42', b'null', b'[[1, 2]]', b'[["a"], "b"]', b'[""]',
                    b'[["", "a"]]', b'[{"a": 1}]', b'"just a string"', b'[]', b'[true]']
        payload = payloads[int(rng.integers(0, len(payloads)))]
        return [identity, payload, b'5', b'1']
    if kind == 6:  # forged control commands
        command = CONTROL[int(rng.integers(0, 3))]
        forged = [[identity, command], [identity, command, b'x', b'0'], [command, b'0', b'0', b'0', b'0'],
                  [identity, command.lower(), b'6', b'0']]
        return forged[int(rng.integers(0, len(forged)))]
    if kind == 7:  # msg_len that lies
        return [identity, json.dumps(['a', 'b']).encode(), b'7', b'5']
    return [identity, random_bytes, random_bytes, random_bytes]  # everything random


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument('-messages', type=int, default=10_000)
    parser.add_argument('-check_every', type=int, default=100, help='fuzz messages between two client checks')
    parser.add_argument('-max_seconds', type=float, default=600)
    parser.add_argument('-log', default='/tmp/bert-serving-fuzz.log')
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    server = Server(args.model_dir, args.num_worker, args.server_option, args.log)
    context = zmq.Context()
    fuzzer = context.socket(zmq.PUSH)
    fuzzer.setsockopt(zmq.LINGER, 0)
    fuzzer.connect(f'tcp://127.0.0.1:{server.args.port}')
    errors, checks = [], 0
    try:
        with server.client() as client:
            probe = random_sentences(rng, 16)
            expected = client.encode(probe)
            time.sleep(1)
            rss_start = server.rss_mb()
            started = time.monotonic()
            sent = 0
            while sent < args.messages and time.monotonic() - started < args.max_seconds:
                fuzzer.send_multipart(malformed(rng))
                sent += 1
                if sent % args.check_every == 0:
                    if not np.allclose(client.encode(probe), expected, atol=1e-5):
                        errors.append(f'wrong vectors after {sent} fuzz messages')
                    checks += 1
                if server.exited:
                    errors.append(f'the server exited after {sent} fuzz messages')
                    break
            time.sleep(6)  # error replies for never-subscribed identities are held 5 s
            if not np.allclose(client.encode(probe), expected, atol=1e-5):
                errors.append('wrong vectors after the fuzzing')
            rss_end = server.rss_mb()
            statistic = client.server_status['statistic']
    finally:
        fuzzer.close()
        context.term()
        server.stop()
    growth = (rss_end - rss_start) / rss_start
    print(f'fuzz messages sent: {sent} in {time.monotonic() - started:.1f} s; client checks passed: {checks}; '
          f'bad requests counted by the server: {statistic["num_bad_request"]}')
    print(f'server RSS: {rss_start:.0f} MiB before, {rss_end:.0f} MiB after ({growth:+.1%})')
    if growth > 0.10:
        errors.append(f'server memory grew by {growth:.1%}')
    for error in errors:
        print('ERROR', error)
    return 1 if errors else 0


if __name__ == '__main__':
    raise SystemExit(main())
