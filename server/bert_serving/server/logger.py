"""Role-tagged, coloured logs: ``I:VENTILATOR:[ventilator:120] message``."""

import logging
import sys

from termcolor import colored

ROLE_COLOURS = {'VENTILATOR': 'magenta', 'SINK': 'green', 'SUPERVISOR': 'blue', 'HTTP': 'yellow', 'GRAPHOPT': 'cyan'}


def set_logger(role: str, verbose: bool = False) -> logging.Logger:
    """Logger of one server role; workers are tagged WORKER-<n>. Safe to call again in the same process."""
    colour = ROLE_COLOURS.get(role.split('-')[0], 'cyan' if role.startswith('WORKER') else 'white')
    logger = logging.getLogger(f'bert_serving.{role}')
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        tag = colored(role, colour)
        handler.setFormatter(logging.Formatter(
            f'%(levelname).1s:{tag}:[%(module)s:%(lineno)d] %(message)s'))
        logger.addHandler(handler)
    return logger
