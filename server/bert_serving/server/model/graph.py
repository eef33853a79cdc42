"""Build the serving graph once (BERT + pooling head, frozen and optimised, written as a GraphDef file) and run it.

The written graph has three int32 [batch, seq_len] inputs ``input_ids``, ``input_mask``, ``input_type_ids``
(both dimensions dynamic; a row may hold several sentences, numbered by ``input_mask``, see ``BertModel``), an
int32 input ``sentence_numbers`` [S] = 1..S (S at least the most sentences a row holds; absent from
token-level graphs) and one float32 output ``final_encodes``: the pooled vectors [batch * S, dim], or with
the ``classify`` task the class probabilities [batch * S, num_labels] of the checkpoint's classification head.
A second output, ``final_encodes_large``, computes the same values with LayerNorm in the form that oneDNN runs as
one kernel (see ``BertModel``); the runner fetches it for large passes on the CPU.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np
from .tensorflow_quiet import tf

from .bert import BertModel
from .chunking import threads_per_pass
from .checkpoint import ModelFiles, load_config, load_weights
from .classifier import load_head, probabilities, read_labels
from .pooling import first_token_vectors, pool
from .strategy import PoolingStrategy

ROW_INPUTS = ('input_ids', 'input_mask', 'input_type_ids')
INPUT_NAMES = ROW_INPUTS + ('sentence_numbers',)
OUTPUT_NAME = 'final_encodes'
LARGE_PASS_OUTPUT = 'final_encodes_large'
OUTPUTS = (OUTPUT_NAME, LARGE_PASS_OUTPUT)
# rows x width from which a CPU pass fetches LARGE_PASS_OUTPUT. Measured with MiniLM on 2 cores, whole passes with
# oneDNN's LayerNorm kernel against without: 13% slower at one sentence of 20 tokens, 2% at 128 tokens, 2% faster
# at 256 and 5-7% from 512 up.
LARGE_PASS_TOKENS = 256
# Device-independent rewrites only: the file is built once and loaded on CPUs and GPUs alike; the runtime
# applies device-specific fusions (remapper, layout) when each worker loads it.
_GRAPPLER_PASSES = ('pruning', 'function', 'constfold', 'shape', 'arithmetic', 'dependency',
                    'common_subgraph_elimination')
# Constants above this size are weights, which grappler never needs to look into.
_INLINE_CONST_BYTES = 1024

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphOptions:
    """What the serving graph computes on top of BERT."""
    pooling_strategy: PoolingStrategy = PoolingStrategy.REDUCE_MEAN
    pooling_layer: tuple[int, ...] = (-2,)
    mask_cls_sep: bool = False
    no_position_embeddings: bool = False
    fp16: bool = False
    special_token_ids: tuple[int, ...] = ()  # ids masked out of pooling when mask_cls_sep ([CLS], [SEP])
    task: str = 'encode'  # or 'classify': the head's probabilities instead of the pooling


def resolve_layers(pooling_layer, num_layers: int) -> tuple[int, ...]:
    """Encoder layer indexes -> 0-based positions; -1 is the last layer. ValueError names the valid range."""
    if not pooling_layer:
        raise ValueError('pooling_layer needs at least one layer index')
    resolved = []
    for index in pooling_layer:
        if not -num_layers <= index < num_layers:
            raise ValueError(f'pooling layer {index} is out of range for a model with {num_layers} encoder layers; '
                             f'valid: -{num_layers}..-1 or 0..{num_layers - 1} (-1 = last layer)')
        resolved.append(index % num_layers)
    return tuple(resolved)


def build_frozen_graph(files: ModelFiles, options: GraphOptions, graph_tmp_dir: str | None = None) -> str:
    """Load the weights, build BERT + pooling, freeze, optimise and write the GraphDef; return its path.

    Bad pooling layers raise ValueError, bad model files ModelFileError (also a missing classification head
    or labels.txt with the classify task). Everything runs on the CPU.
    """
    config = load_config(files)
    head = load_head(files, config, len(read_labels(files))) if options.task == 'classify' else None
    # CLS_POOLED and the head read the pooler only, so the layer option is ignored rather than checked.
    layers = () if head is not None or options.pooling_strategy is PoolingStrategy.CLS_POOLED else \
        resolve_layers(options.pooling_layer, config.num_hidden_layers)
    start = time.perf_counter()
    weights = load_weights(files, config)
    with tf.device('/CPU:0'):
        graph_def = _freeze(config, weights, options, layers, head)
    del weights
    graph_def = _optimize(graph_def)
    for node in graph_def.node:  # let each worker place the graph on its own device
        node.device = ''
    if graph_tmp_dir:
        os.makedirs(graph_tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix='bert-graph-', suffix='.pb', dir=graph_tmp_dir)
    with os.fdopen(fd, 'wb') as f:
        f.write(graph_def.SerializeToString())
    logger.info('optimised graph (%d nodes) written to %s in %.1fs', len(graph_def.node), path,
                time.perf_counter() - start)
    return path


def _freeze(config, weights, options: GraphOptions, layers, head=None):
    # The first half of convert_variables_to_constants_v2: it stops at the frozen GraphDef instead of also
    # rebuilding a ConcreteFunction from it, which we never call and which costs seconds per 100 MB of weights.
    from tensorflow.python.framework.convert_to_constants import (_FunctionConverterDataInEager,
                                                                  _replace_variables_by_constants)

    model = BertModel(config, weights, dtype=tf.float16 if options.fp16 else tf.float32,
                      use_position_embeddings=not options.no_position_embeddings, packed_rows=True)
    special = tuple(options.special_token_ids) if options.mask_cls_sep else ()
    spec = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ROW_INPUTS]
    spec.append(tf.TensorSpec([None], tf.int32, name='sentence_numbers'))

    @tf.function(input_signature=spec, autograph=False)  # plain Python control flow only
    def serve(input_ids, input_mask, input_type_ids, sentence_numbers):
        def encodes(large_pass):
            all_layers, _ = model(input_ids, input_mask, input_type_ids, large_pass=large_pass)
            if head is not None or options.pooling_strategy is PoolingStrategy.CLS_POOLED:
                pooled = tf.cast(model.pooler(first_token_vectors(all_layers[-1], input_mask, sentence_numbers)),
                                 tf.float32)
                return probabilities(pooled, head) if head is not None else pooled
            return pool([all_layers[i] for i in layers], input_ids, input_mask, sentence_numbers,
                        options.pooling_strategy, special)
        return [tf.identity(encodes(large_pass=name == LARGE_PASS_OUTPUT), name=name) for name in OUTPUTS]

    converter = _FunctionConverterDataInEager(func=serve.get_concrete_function(), lower_control_flow=True,
                                              aggressive_inlining=False)
    graph_def, _ = _replace_variables_by_constants(converter_data=converter)
    return graph_def


def _split_weights(graph_def):
    """Replace weight constants by placeholders of the same name, dtype and shape; return (graph, {name: node}).

    TensorFlow copies every constant of a graph several times whenever it optimises or instantiates it (seconds
    per 100 MB of weights); the weights take no part in those rewrites, so both the offline optimisation and the
    runner handle the light graph and keep the weights apart.
    """
    from tensorflow.core.framework import graph_pb2

    weights = {}
    light = graph_pb2.GraphDef(versions=graph_def.versions, library=graph_def.library)
    for node in graph_def.node:
        tensor = node.attr['value'].tensor if node.op == 'Const' else None
        if tensor is not None and len(tensor.tensor_content) > _INLINE_CONST_BYTES:
            weights[node.name] = node
            stand_in = light.node.add(name=node.name, op='Placeholder')
            stand_in.attr['dtype'].type = tensor.dtype
            stand_in.attr['shape'].shape.CopyFrom(tensor.tensor_shape)
        else:
            light.node.add().CopyFrom(node)
    return light, weights


def _optimize(graph_def):
    """Run grappler's device-independent passes, keeping only what the outputs need."""
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.grappler import tf_optimizer

    light, weights = _split_weights(graph_def)
    meta_graph = meta_graph_pb2.MetaGraphDef(graph_def=light)
    # Grappler keeps only what the 'train_op' collection fetches.
    meta_graph.collection_def['train_op'].node_list.value.extend(OUTPUTS)
    config = config_pb2.ConfigProto()
    rewrite = config.graph_options.rewrite_options
    rewrite.optimizers.extend(_GRAPPLER_PASSES)
    rewrite.min_graph_nodes = -1
    optimized = _needed_by(tf_optimizer.OptimizeGraph(config, meta_graph), OUTPUTS)
    for node in optimized.node:
        if node.name in weights:
            node.CopyFrom(weights[node.name])
    leftover = {n.name for n in optimized.node if n.op == 'Placeholder'} - set(INPUT_NAMES)
    if leftover:  # grappler renamed a stand-in: the graph would expect the weight as an input
        raise RuntimeError(f'graph optimisation lost weights {sorted(leftover)}')
    return optimized


def _needed_by(graph_def, outputs):
    """The nodes ``outputs`` depend on (grappler keeps unused placeholders: stand-ins of pruned weights)."""
    by_name = {node.name: node for node in graph_def.node}
    needed, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(i.lstrip('^').split(':')[0] for i in by_name[name].input)
    kept = type(graph_def)(versions=graph_def.versions, library=graph_def.library)
    kept.node.extend(node for node in graph_def.node if node.name in needed)
    return kept


class FrozenGraphRunner:
    """Load a written graph and run it on one device (optionally XLA-compiled).

    The weights are loaded once as tensors on ``device`` and fed into the imported graph, so they stay resident
    there and the graph TensorFlow instantiates per call signature stays small. Passes of LARGE_PASS_TOKENS or
    more on the CPU (without XLA, which fuses on its own) fetch LARGE_PASS_OUTPUT when the graph has it.
    """

    def __init__(self, graph_path: str, device: str = '/CPU:0', xla: bool = False):
        graph_def = tf.compat.v1.GraphDef()
        with open(graph_path, 'rb') as f:
            graph_def.ParseFromString(f.read())
        light, weight_nodes = _split_weights(graph_def)
        with tf.device(device):
            weights = {name: tf.constant(tf.make_ndarray(node.attr['value'].tensor))
                       for name, node in weight_nodes.items()}
        del graph_def, weight_nodes
        present = {node.name for node in light.node}
        self.packs_sentences = 'sentence_numbers' in present  # pooled graphs; token-level ones take one per row
        names = INPUT_NAMES if self.packs_sentences else ROW_INPUTS
        specs = [tf.TensorSpec([None, None], tf.int32)] * len(ROW_INPUTS)
        if self.packs_sentences:
            specs.append(tf.TensorSpec([None], tf.int32))

        outputs = [OUTPUT_NAME]
        if LARGE_PASS_OUTPUT in present and 'CPU' in device.upper() and not xla:
            outputs.append(LARGE_PASS_OUTPUT)
        self._functions = {output: _output_function(light, weights, names, specs, output, xla) for output in outputs}
        self.device = device

    def output_for(self, rows: int, width: int) -> str:
        """The output a pass of ``rows`` x ``width`` tokens fetches."""
        large = rows * width >= LARGE_PASS_TOKENS and LARGE_PASS_OUTPUT in self._functions
        return LARGE_PASS_OUTPUT if large else OUTPUT_NAME

    def run(self, input_ids, input_mask, input_type_ids, sentences_per_row: int = 1) -> np.ndarray:
        """float32 [B * sentences_per_row, dim] (row b's sentence s at b * sentences_per_row + s - 1, for the
        sentence numbered s in ``input_mask``), or [B, L, dim] for the NONE strategy (one sentence per row)."""
        inputs = [input_ids, input_mask, input_type_ids]
        if self.packs_sentences:
            inputs.append(np.arange(1, sentences_per_row + 1))
        elif sentences_per_row != 1:
            raise ValueError('a token-level graph takes one sentence per row')
        with tf.device(self.device):
            out = self._functions[self.output_for(*np.shape(input_ids))](*(tf.constant(v, tf.int32) for v in inputs))
        return out.numpy()


def _output_function(light, weights: dict, input_names, specs, output: str, xla: bool):
    """A function of the graph's inputs that computes ``output`` from the part of ``light`` it needs, with the
    ``weights`` tensors fed in for their placeholders."""
    part = _needed_by(light, [output])
    kept = {node.name for node in part.node}

    def serve(*inputs):
        feeds = {f'{name}:0': tensor for name, tensor in zip(input_names, inputs)}
        # tf.identity captures each weight tensor into the function as an input, by reference.
        feeds.update((f'{name}:0', tf.identity(tensor)) for name, tensor in weights.items() if name in kept)
        return tf.graph_util.import_graph_def(part, input_map=feeds, return_elements=[output + ':0'],
                                              name='frozen')[0]
    function = tf.compat.v1.wrap_function(serve, specs)
    return tf.function(function, jit_compile=True) if xla else function


def share_cores_between_passes(passes: int) -> None:
    """Give TensorFlow's intra-op threads this process's cores shared among ``passes`` forward passes that run
    at once (2 cores, 2 passes: one thread each, so each pass runs its kernels on its own core), unless the
    program chose a number itself or TensorFlow's runtime has started (then it keeps its threads).

    Measured with MiniLM on 2 CPU cores (docs/performance.md): two-threaded kernels of two passes at once
    contend, one thread per pass is 5-12% faster on big calls and no slower on one sentence.
    """
    if tf.config.threading.get_intra_op_parallelism_threads():
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads_per_pass(len(os.sched_getaffinity(0)), passes))
    except RuntimeError:
        logger.debug('TensorFlow runs already: its intra-op threads stay as they are')


def select_device(gpu_id: int | None, memory_fraction: float) -> str:
    """Pin this (fresh) process to one GPU with a memory cap, or to the CPU; return the device to run on.

    Must run before TensorFlow starts its runtime (before any op) in the process.
    """
    # Number GPUs as nvidia-smi (and GPUtil, and -device_map users) do, not fastest-first.
    os.environ.setdefault('CUDA_DEVICE_ORDER', 'PCI_BUS_ID')
    gpus = tf.config.list_physical_devices('GPU')
    if gpu_id is None or not gpus:
        if gpus:
            tf.config.set_visible_devices([], 'GPU')
        if gpu_id is not None:
            logger.warning('GPU %d requested but no GPU is visible to TensorFlow; running on CPU', gpu_id)
        return '/CPU:0'
    if not 0 <= gpu_id < len(gpus):
        raise ValueError(f'GPU {gpu_id} does not exist; TensorFlow sees {len(gpus)} GPU(s)')
    gpu = gpus[gpu_id]
    tf.config.set_visible_devices([gpu], 'GPU')
    total_mb = _gpu_memory_mb(gpu_id)
    if total_mb:
        limit = int(total_mb * memory_fraction)
        tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=limit)])
    else:  # size unknown: at least do not grab the whole card
        tf.config.experimental.set_memory_growth(gpu, True)
    return '/GPU:0'


def _gpu_memory_mb(gpu_id: int) -> float | None:
    """Total memory of a GPU in MiB, from nvidia-smi via GPUtil; None when it cannot be read."""
    try:
        import GPUtil
        return GPUtil.getGPUs()[gpu_id].memoryTotal
    except Exception:  # GPUtil missing, nvidia-smi absent or failing: the caller falls back to memory growth
        return None
