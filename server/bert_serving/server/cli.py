"""Entry points of the bert-serving-* commands."""

import os
import signal
import sys

from .args import get_args_parser, get_shutdown_parser


def main(argv=None) -> int:
    """bert-serving-start: run a server until Ctrl-C, SIGTERM or a TERMINATION request."""
    from .server import BertServer

    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        server = BertServer(args)
    except ValueError as error:  # the model or an option is wrong: say which, like any bad option
        parser.exit(2, f'{parser.prog}: error: {error}\n')
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server.request_stop())
    server.start()
    while server.is_alive():
        server.join(0.5)
    return 1 if server.exception else 0


def terminate(argv=None) -> int:
    """bert-serving-terminate: stop the server listening on -ip/-port."""
    from .server import send_termination

    args = get_shutdown_parser().parse_args(argv)
    try:
        send_termination(args.ip, args.port, args.timeout)
    except TimeoutError as error:
        print(f'bert-serving-terminate: {error}', file=sys.stderr)
        return 1
    print(f'the server at {args.ip}:{args.port} stopped')
    return 0


def prepare_model(argv=None) -> int:
    """bert-serving-prepare-model: make a model folder of the MiniLM model shipped on PyPI."""
    from .model.packaged import main as prepare

    return prepare(argv) or 0


def benchmark(argv=None) -> int:
    """bert-serving-benchmark: sentences/s per parameter, varied one at a time, one server per setting."""
    from .benchmark import main as run

    return run(argv)


BULK_MISSING = ('bert-serving-encode needs Ray Data, pyarrow and tqdm: '
                'pip install "bert-serving-server[bulk]"')


def encode(argv=None) -> int:
    """bert-serving-encode: encode a corpus into Parquet parts on a local or an existing Ray cluster."""
    from .args import get_encode_parser

    parser = get_encode_parser()
    args = parser.parse_args(argv)
    try:
        import pyarrow  # noqa: F401  (the extra's packages, checked before any work)
        import ray.data  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError as error:
        parser.exit(2, f'{parser.prog}: error: {BULK_MISSING} ({error})\n')
    from .bulk.job import encode_corpus
    from .bulk.parts import IncompleteOutputError

    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '0' if args.verbose else '2')
    try:
        encode_corpus(args, log=lambda line: print(line, file=sys.stderr))
    except ValueError as error:  # bad options, model, input or output folder: one line, as argparse does
        parser.exit(2, f'{parser.prog}: error: {error}\n')
    except IncompleteOutputError as error:
        parser.exit(1, f'{parser.prog}: error: {error}\n')
    except KeyboardInterrupt:
        parser.exit(130, f'{parser.prog}: interrupted; the same command resumes where this run stopped\n')
    return 0
