"""Entry points of bert-serving-finetune and bert-serving-average-checkpoints.

TensorFlow is imported only after the options are parsed: the preprocessing workers re-import this module.
"""
from __future__ import annotations

import logging
import os
import sys

from .args import get_average_parser, get_finetune_parser

log = logging.getLogger('bert_serving.finetune')


def _setup_logging(verbose: bool) -> None:
    if verbose:
        os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(levelname)s %(message)s', datefmt='%H:%M:%S')
    if not verbose:
        logging.getLogger('tensorflow').setLevel(logging.ERROR)


def main(argv=None) -> int:
    """bert-serving-finetune: train, evaluate and predict; a bad input stops it with one line and status 2."""
    parser = get_finetune_parser()
    args = parser.parse_args(argv)
    if not (args.do_train or args.do_eval or args.do_predict):
        parser.error('nothing to do: give -do_train, -do_eval and/or -do_predict')
    _setup_logging(args.verbose)
    from .run import run
    try:
        run(args)
    except ValueError as error:  # bad data, model or output folder: the message names it
        parser.exit(2, f'{parser.prog}: error: {error}\n')
    return 0


def average_checkpoints(argv=None) -> int:
    """bert-serving-average-checkpoints: the mean of the newest (or best) checkpoints as a new one."""
    parser = get_average_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    from .average import average_checkpoints as average
    try:
        result = average(args.model_dir, args.output_dir, args.max_count, args.by_metric)
    except ValueError as error:  # bad data, model or output folder: the message names it
        parser.exit(2, f'{parser.prog}: error: {error}\n')
    log.info('averaged %d checkpoint(s) (%s) into %s', len(result['averaged']), ', '.join(result['averaged']),
             result['checkpoint'])
    return 0
