"""bert-serving server: map sentences to fixed-length vectors with a BERT model, served over ZeroMQ."""

from .args import get_args_parser, get_benchmark_parser, get_shutdown_parser
from .server import BertServer
from .version import __version__

__all__ = ['BertServer', 'get_args_parser', 'get_benchmark_parser', 'get_shutdown_parser', '__version__']
