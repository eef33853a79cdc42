"""The one argument parser of every command: CLI, --help, docs and the config reply come from it."""

import argparse

from .model.strategy import PoolingStrategy
from .version import __version__


def _number(value: str, cast, what: str):
    try:
        return cast(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{value!r} is not {what}') from None


def seq_len_type(value: str, what: str = 'an integer') -> int:
    """A sequence length: an integer >= 3."""
    number = _number(value, int, what)
    if number < 3:
        raise argparse.ArgumentTypeError(f'{number} is too small: [CLS], [SEP] and one token need at least 3')
    return number


def max_seq_len_type(value: str):
    """`-max_seq_len`: an integer >= 3, or NONE for the longest sequence of each mini-batch."""
    if value.upper() == 'NONE':
        return None
    return seq_len_type(value, 'an integer or NONE')


def positive_int(value: str) -> int:
    """An integer >= 1."""
    number = _number(value, int, 'an integer')
    if number < 1:
        raise argparse.ArgumentTypeError(f'{number} must be at least 1')
    return number


def fraction(value: str) -> float:
    """A float in (0, 1]."""
    number = _number(value, float, 'a number')
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(f'{number} must be in (0, 1]')
    return number


def pooling_strategy_type(value: str) -> PoolingStrategy:
    try:
        return PoolingStrategy.from_string(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_dir_options(group, ckpt_name=True) -> None:
    """-model_dir, -tuned_model_dir, -ckpt_name (unless ``ckpt_name`` is False) and -config_name."""
    group.add_argument('-model_dir', type=str, required=True,
                       help='folder of the pretrained BERT model (Google checkpoint or Hugging Face safetensors)')
    group.add_argument('-tuned_model_dir', type=str,
                       help='folder of a fine-tuned checkpoint whose weights override the pretrained ones')
    if ckpt_name:
        group.add_argument('-ckpt_name', type=str, default='bert_model.ckpt',
                           help='checkpoint name, e.g. model.ckpt-343 inside -tuned_model_dir')
    group.add_argument('-config_name', type=str, default='bert_config.json',
                       help='model config file name (config.json is used for Hugging Face folders)')


def add_cased_tokenization_option(group) -> None:
    """-cased_tokenization, stored as ``do_lower_case``."""
    group.add_argument('-cased_tokenization', dest='do_lower_case', action='store_false', default=True,
                       help='keep case and accents (cased or multilingual-cased models)')


def add_verbose_option(parser) -> None:
    parser.add_argument('-verbose', action='store_true', default=False,
                        help="debug logging, and TensorFlow's native start-up lines")


def add_encoding_options(parser: argparse.ArgumentParser):
    """The options that decide what a sentence's vector is (bert-serving-start and bert-serving-encode share them).

    Returns the 'BERT parameters' group, so that a command can add its own options there.
    """
    paths = parser.add_argument_group('File paths', 'where the model and the optimized graph are')
    add_model_dir_options(paths)
    paths.add_argument('-graph_tmp_dir', type=str, default=None,
                       help='folder for the optimized graph file (default: a temporary folder)')

    bert = parser.add_argument_group('BERT parameters', 'how sentences become vectors')
    bert.add_argument('-max_seq_len', type=max_seq_len_type, default=25,
                      help='longer sequences are cut on the right; NONE = the longest sequence of each mini-batch')
    add_cased_tokenization_option(bert)
    bert.add_argument('-pooling_layer', type=int, nargs='+', default=[-2],
                      help='encoder layer(s) to pool, -1 is the last; several are concatenated')
    bert.add_argument('-pooling_strategy', type=pooling_strategy_type, default=PoolingStrategy.REDUCE_MEAN,
                      help='one of ' + ', '.join(PoolingStrategy.__members__))
    bert.add_argument('-mask_cls_sep', action='store_true', default=False,
                      help='leave [CLS] and [SEP] out of the pooling (their token vectors become zero)')
    bert.add_argument('-no_special_token', action='store_true', default=False,
                      help='do not add [CLS] and [SEP] to the sentences')
    bert.add_argument('-no_position_embeddings', action='store_true', default=False,
                      help='build the model without position embeddings')
    return bert


def add_precision_options(group) -> None:
    """-xla and -fp16, the same for serving and bulk encoding."""
    group.add_argument('-xla', action='store_true', default=False,
                       help='compile the graph with XLA')
    group.add_argument('-fp16', action='store_true', default=False,
                       help='compute in half precision (results are still float32)')


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    bert = add_encoding_options(parser)
    bert.add_argument('-show_tokens_to_client', action='store_true', default=False,
                      help='send the server-side tokenization back with the vectors')
    bert.add_argument('-fixed_embed_length', action='store_true', default=False,
                      help='with -max_seq_len NONE and NONE pooling, pad token-level results to the model length')


TASKS = ('encode', 'classify')


def add_task_option(parser) -> None:
    """``-task``: what the model serves; shared by every command that runs the serving graph."""
    parser.add_argument('-task', type=str, choices=TASKS, default='encode',
                        help='encode = sentence vectors; classify = the class probabilities of a fine-tuned '
                             'classifier (-tuned_model_dir with output_weights/output_bias and labels.txt)')


def _add_serving_options(parser: argparse.ArgumentParser) -> None:
    serving = parser.add_argument_group('Serving', 'ports, processes, devices and batching')
    serving.add_argument('-bind', type=str, default='*',
                         help='address the two ports listen on: * = every interface (as 1.10 did), '
                              '127.0.0.1 = this machine only')
    serving.add_argument('-port', '-port_in', '-port_data', type=int, default=5555,
                         help='port that receives requests from clients')
    serving.add_argument('-port_out', '-port_result', type=int, default=5556,
                         help='port that publishes results to clients')
    serving.add_argument('-http_port', type=int, default=None,
                         help='port of the HTTP proxy (needs bert-serving-server[http])')
    serving.add_argument('-http_max_connect', type=positive_int, default=32,
                         help='clients the HTTP proxy keeps open to the server')
    serving.add_argument('-cors', type=str, default='*',
                         help='Access-Control-Allow-Origin of the HTTP proxy (one origin, or several comma-separated)')
    serving.add_argument('-http_auth_token', dest='auth_token', type=str, default=None,
                         help='when set, HTTP requests must send "Authorization: Bearer <token>"')
    serving.add_argument('-http_max_body_bytes', dest='max_body_bytes', type=positive_int, default=10 * 1024 * 1024,
                         help='largest HTTP request body accepted (larger gets 413)')
    serving.add_argument('-http_timeout', dest='request_timeout_ms', type=positive_int, default=60_000,
                         help='milliseconds the HTTP proxy waits for the server before answering 504')
    serving.add_argument('-num_worker', type=positive_int, default=1,
                         help='number of worker processes (one device each)')
    serving.add_argument('-max_batch_size', type=positive_int, default=256,
                         help='most sentences in one forward pass; larger requests are split')
    serving.add_argument('-max_batch_tokens', type=positive_int, default=None,
                         help='most rows x tokens in one forward pass: a batch runs as chunks of sentences '
                              'of like length within it (default: 1024 on the CPU, 16384 on a GPU)')
    serving.add_argument('-priority_batch_size', type=int, default=16,
                         help='requests of at most this many sentences jump the queue')
    serving.add_argument('-max_queued_rows', type=positive_int, default=500_000,
                         help='most sentences waiting in the queue; beyond it requests get a fast '
                              '"server busy" error instead of piling up in memory')
    serving.add_argument('-cpu', action='store_true', default=False,
                         help='run on the CPU even when GPUs are there')
    add_precision_options(serving)
    serving.add_argument('-gpu_memory_fraction', type=fraction, default=0.5,
                         help='share of a GPU\'s memory one worker may take')
    serving.add_argument('-device_map', type=int, nargs='+', default=[],
                         help='GPU ids to use, reused round-robin when -num_worker exceeds them')
    serving.add_argument('-prefetch_size', type=positive_int, default=10,
                         help='most batches a worker holds ahead of the running one when the queue '
                              'has full batches to give (small requests are never handed out early, '
                              'so that they can be batched together)')


def _add_security_options(parser: argparse.ArgumentParser) -> None:
    security = parser.add_argument_group('Security', 'opt-in CurveZMQ; the 1.10 client cannot use it')
    security.add_argument('-curve_secret_key', type=str, default=None,
                          help='the server\'s key_secret file (bert-serving-keys makes one); encrypts both ports')
    security.add_argument('-curve_client_keys', type=str, default=None,
                          help='folder of the public .key files of the clients that may connect')


def get_args_parser() -> argparse.ArgumentParser:
    """Parser of bert-serving-start."""
    parser = argparse.ArgumentParser(prog='bert-serving-start',
                                     description='Start a BERT sentence-encoding server.')
    _add_model_options(parser)
    add_task_option(parser)
    _add_serving_options(parser)
    _add_security_options(parser)
    add_verbose_option(parser)
    parser.add_argument('-version', action='version', version='%(prog)s ' + __version__)
    return parser


def get_benchmark_parser() -> argparse.ArgumentParser:
    """Parser of bert-serving-benchmark: server options plus the experiment grid."""
    parser = get_args_parser()
    parser.prog = 'bert-serving-benchmark'
    parser.description = 'Vary one parameter at a time and print sentences/s.'
    parser.set_defaults(num_worker=1)
    grid = parser.add_argument_group('Benchmark', 'the experiments')
    grid.add_argument('-test_client_batch_size', type=int, nargs='*', default=[1, 16, 256, 4096])
    grid.add_argument('-test_max_batch_size', type=int, nargs='*', default=[8, 32, 128, 512])
    grid.add_argument('-test_max_seq_len', type=int, nargs='*', default=[32, 64, 128, 256])
    grid.add_argument('-test_num_client', type=int, nargs='*', default=[1, 4, 16, 64])
    grid.add_argument('-test_pooling_layer', type=int, nargs='*', default=[-1, -2])
    grid.add_argument('-wait_till_ready', type=positive_int, default=180,
                      help='most seconds to wait for each server to be ready')
    grid.add_argument('-client_vocab_file', type=str, default='README.md',
                      help='text file whose words make up the test sentences')
    grid.add_argument('-num_repeat', type=positive_int, default=10,
                      help='timed requests per client and setting (after one warm-up request)')
    common = parser.add_argument_group('Common client settings', 'what the clients send when not varied')
    common.add_argument('-client_batch_size', type=positive_int, default=4096, help='sentences per request')
    common.add_argument('-num_client', type=positive_int, default=1, help='concurrent clients')
    output = parser.add_argument_group('Output', 'where the results go besides the printed tables')
    output.add_argument('-output_json', type=str, default=None, help='write the results as JSON')
    output.add_argument('-output_csv', type=str, default=None, help='write the results as CSV')
    output.add_argument('-output_png', type=str, default=None,
                        help='plot sentences/s per parameter (needs bert-serving-server[benchmark])')
    return parser


def non_negative_float(value: str) -> float:
    """A number >= 0."""
    number = _number(value, float, 'a number')
    if number < 0:
        raise argparse.ArgumentTypeError(f'{number} must be 0 or more')
    return number


def get_encode_parser() -> argparse.ArgumentParser:
    """Parser of bert-serving-encode: the server's encoding options plus the corpus, the output and Ray."""
    parser = argparse.ArgumentParser(prog='bert-serving-encode',
                                     description='Encode a corpus into Parquet files on Ray Data '
                                                 '(a local cluster, or an existing one).')
    bert = add_encoding_options(parser)
    add_precision_options(bert)
    add_task_option(bert)
    corpus = parser.add_argument_group('Corpus', 'what is read and what is written')
    corpus.add_argument('-input', nargs='+', required=True,
                        help='input files or glob patterns (quote them), e.g. "corpus/*.txt"')
    corpus.add_argument('-input_format', choices=('text', 'jsonl', 'csv', 'parquet'), default=None,
                        help='text (one sentence a line), jsonl, csv or parquet (default: from the file suffix)')
    corpus.add_argument('-text_column', default='text', help='column (or JSON key) holding the sentence')
    corpus.add_argument('-id_column', default=None,
                        help='column holding each row\'s id (default: the file\'s path and the row number)')
    corpus.add_argument('-output_dir', required=True, help='folder of the Parquet parts and _manifest.json')
    corpus.add_argument('-rows_per_part', type=positive_int, default=10_000,
                        help='input rows per output part: the unit of work that a crash can lose')
    corpus.add_argument('-no_text', action='store_true', default=False, help='leave the text out of the output')
    corpus.add_argument('-overwrite', action='store_true', default=False,
                        help='delete what -output_dir holds and start over')
    corpus.add_argument('-skip_bad_rows', action='store_true', default=False,
                        help='skip empty or non-string texts (counted and listed in the manifest) '
                             'instead of stopping at the first')
    cluster = parser.add_argument_group('Ray', 'where the encoder actors run')
    cluster.add_argument('-ray_address', default=None,
                         help='auto, host:port or ray://host:port of a running cluster (default: start a local one)')
    cluster.add_argument('-num_workers', type=positive_int, default=None,
                         help='encoder actors (default: one per GPU with -gpus_per_worker, else one per CPU)')
    cluster.add_argument('-batch_size', type=positive_int, default=256, help='sentences per forward pass')
    cluster.add_argument('-gpus_per_worker', type=non_negative_float, default=0,
                         help='GPUs each actor takes (1: one actor per GPU; 0: CPU)')
    add_verbose_option(parser)
    parser.add_argument('-version', action='version', version='%(prog)s ' + __version__)
    return parser


def get_shutdown_parser() -> argparse.ArgumentParser:
    """Parser of bert-serving-terminate."""
    parser = argparse.ArgumentParser(prog='bert-serving-terminate',
                                     description='Stop a running bert-serving server.')
    parser.add_argument('-ip', type=str, default='localhost', help='host of the server')
    parser.add_argument('-port', '-port_in', '-port_data', type=int, required=True,
                        help='the server\'s -port')
    parser.add_argument('-timeout', type=int, default=5000, help='milliseconds to wait for the server')
    return parser


SECRET_ARGUMENTS = ('auth_token',)  # shown as HIDDEN: every client can read the config reply


def args_to_config(args: argparse.Namespace) -> dict:
    """Every argument as a JSON-friendly dict, with the pooling strategy as its name and secrets hidden."""
    config = {}
    for key, value in sorted(vars(args).items()):
        if isinstance(value, PoolingStrategy):
            value = value.name
        elif key in SECRET_ARGUMENTS and value is not None:
            value = 'HIDDEN'
        config[key] = value
    return config


def options_table(parser: argparse.ArgumentParser) -> str:
    """A Markdown table of every option of ``parser`` (the README and the docs embed it)."""
    rows = ['| option | default | meaning |', '|---|---|---|']
    for action in parser._actions:
        if not action.option_strings or action.dest == 'help':
            continue
        names = ' / '.join(f'`{name}`' for name in action.option_strings)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            default = 'off'
        elif action.default is None or action.default == argparse.SUPPRESS:
            default = 'required' if action.required else '—'
        elif isinstance(action.default, PoolingStrategy):
            default = action.default.name
        else:
            default = str(action.default)
        rows.append(f'| {names} | {default} | {action.help or ""} |')
    return '\n'.join(rows)


def update_readme(path: str) -> None:
    """Rewrite the options table between the markers of a README."""
    text = open(path).read()
    start, end = '<!-- options:start -->', '<!-- options:end -->'
    head, rest = text.split(start)
    _, tail = rest.split(end)
    open(path, 'w').write(f'{head}{start}\n{options_table(get_args_parser())}\n{end}{tail}')


if __name__ == '__main__':
    import sys
    update_readme(sys.argv[1] if len(sys.argv) > 1 else 'README.md')
