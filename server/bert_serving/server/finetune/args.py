"""The parsers of bert-serving-finetune and bert-serving-average-checkpoints (shared options come from ../args)."""
from __future__ import annotations

import argparse
import os

from ..args import (_number, add_cased_tokenization_option, add_model_dir_options, add_verbose_option,
                    positive_int, seq_len_type)
from ..version import __version__
from .distribution import parse_devices
from .metrics import KEEP_METRICS


def _checked_float(value: str, ok, rule: str) -> float:
    number = _number(value, float, 'a number')
    if not ok(number):
        raise argparse.ArgumentTypeError(f'{number} {rule}')
    return number


def non_negative_float(value: str) -> float:
    return _checked_float(value, lambda number: number >= 0, 'must be >= 0')


def proportion(value: str) -> float:
    """A float in [0, 1)."""
    return _checked_float(value, lambda number: 0 <= number < 1, 'must be in [0, 1)')


def devices_type(value: str) -> str:
    try:
        parse_devices(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def get_finetune_parser() -> argparse.ArgumentParser:
    """Parser of bert-serving-finetune."""
    parser = argparse.ArgumentParser(prog='bert-serving-finetune',
                                     description='Fine-tune, evaluate and predict with a BERT text classifier.')
    paths = parser.add_argument_group('File paths', 'the model, the data and where results go')
    add_model_dir_options(paths, ckpt_name=False)
    paths.add_argument('-data_dir', type=str, required=True,
                       help='folder of train.tsv, dev.tsv and test.tsv (UTF-8, tab-separated, with a header)')
    paths.add_argument('-output_dir', type=str, required=True,
                       help='folder for checkpoints, labels.txt, records, reports and TensorBoard runs')
    paths.add_argument('-tensorboard_dir', type=str, default=None, help='TensorBoard folder (default: O/tensorboard)')
    paths.add_argument('-predict_file', type=str, default=None,
                       help='TSV file to predict with -do_predict (default: -data_dir/test.tsv)')
    actions = parser.add_argument_group('Actions', 'what to do, in this order')
    actions.add_argument('-do_train', action='store_true', default=False, help='fine-tune on train.tsv')
    actions.add_argument('-do_eval', action='store_true', default=False,
                         help='evaluate on dev.tsv and write O/eval_results.json')
    actions.add_argument('-do_predict', action='store_true', default=False,
                         help='write O/predictions.tsv: the probabilities of every label for each row')
    _add_training_options(parser)
    data = parser.add_argument_group('Data', 'tokenization and preprocessing')
    data.add_argument('-max_seq_len', type=seq_len_type, default=128, help='longer examples are cut on the right')
    add_cased_tokenization_option(data)
    data.add_argument('-num_preprocess_workers', type=positive_int, default=os.cpu_count() or 1,
                      help='processes that tokenize the data into TFRecord files (default: the CPU count)')
    data.add_argument('-skip_bad_rows', action='store_true', default=False,
                      help='skip malformed rows (counted in the log and eval_results.json) instead of stopping')
    add_verbose_option(parser)
    parser.add_argument('-version', action='version', version='%(prog)s ' + __version__)
    return parser


def _add_training_options(parser) -> None:
    train = parser.add_argument_group('Training', 'optimiser, schedule, checkpoints and devices')
    train.add_argument('-train_batch_size', type=positive_int, default=32, help='examples per training step')
    train.add_argument('-eval_batch_size', type=positive_int, default=128, help='examples per evaluation batch')
    train.add_argument('-predict_batch_size', type=positive_int, default=128, help='examples per prediction batch')
    train.add_argument('-learning_rate', type=non_negative_float, default=5e-5, help='peak learning rate of AdamW')
    train.add_argument('-num_train_epochs', type=non_negative_float, default=3.0, help='passes over train.tsv')
    train.add_argument('-warmup_proportion', type=proportion, default=0.1,
                       help='share of the steps with a linear warmup of the learning rate')
    train.add_argument('-cycle', type=positive_int, default=1,
                       help='restarts of the linear (polynomial) decay after the warmup')
    train.add_argument('-label_smoothing', type=proportion, default=0.1, help='label smoothing of the loss')
    train.add_argument('-save_checkpoints_steps', type=positive_int, default=1000,
                       help='steps between checkpoints (each is evaluated on dev.tsv)')
    train.add_argument('-keep_checkpoint_max', type=positive_int, default=20,
                       help='checkpoints kept: the best by -keep_metric (and always the newest)')
    train.add_argument('-keep_metric', choices=KEEP_METRICS, default='accuracy',
                       help='dev metric that ranks checkpoints (loss: lower is better)')
    train.add_argument('-devices', type=devices_type, default='cpu',
                       help='cpu, cpu:N (N logical CPU devices), all (every GPU), or GPU ids such as 0,1; '
                            'several devices train data-parallel (MirroredStrategy)')
    train.add_argument('-seed', type=int, default=0, help='seed of the head, the data order and dropout')


def get_average_parser() -> argparse.ArgumentParser:
    """Parser of bert-serving-average-checkpoints."""
    parser = argparse.ArgumentParser(prog='bert-serving-average-checkpoints',
                                     description='Average the variables of the last (or best) checkpoints.')
    parser.add_argument('-model_dir', type=str, required=True,
                        help='output folder of bert-serving-finetune holding the checkpoints')
    parser.add_argument('-output_dir', type=str, required=True,
                        help='folder for the averaged checkpoint and labels.txt')
    parser.add_argument('-max_count', type=positive_int, default=20, help='how many checkpoints to average')
    parser.add_argument('-by_metric', action='store_true', default=False,
                        help='average the best checkpoints by the kept metric instead of the newest')
    add_verbose_option(parser)
    parser.add_argument('-version', action='version', version='%(prog)s ' + __version__)
    return parser
