"""The driver of bert-serving-encode: plan, run the Ray Data pipeline, check the output, write the manifest.

Pipeline: one row per input file still to do -> read tasks that cut each file into parts (``map_batches``)
-> a pool of encoder actors, one part per call, each writing its part (``map_batches``) -> the driver,
which only counts. Ray restarts a dead actor and retries its part; parts are written atomically under
names fixed by their rows, so a retry cannot duplicate rows, and the final check proves it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from ..model.strategy import PoolingStrategy
from .actor import PartEncoder, ShippedModel
from .inputs import BadInputError, InputFile, find_inputs, read_rows
from .manifest import describe_run, finish_manifest, open_output_dir
from .parts import plan_parts, scan_parts, verify_output

ACTOR_START_TIMEOUT_S = 600
CLUSTER_ANSWER_TIMEOUT_S = 10


def encode_corpus(args, log=print) -> dict:
    """Encode every row of ``args.input`` not yet in ``args.output_dir``; return the final manifest.

    Raises ValueError (bad options, model or output folder), BadInputError, IncompleteOutputError.
    """
    from ..server import check_encoding_options

    if args.pooling_strategy is PoolingStrategy.NONE:
        raise ValueError('-pooling_strategy NONE gives a matrix per sentence; bulk encoding writes one vector '
                         'per row: pick another strategy')
    inputs = find_inputs(args.input, args.input_format)
    files, config = check_encoding_options(args)
    manifest = open_output_dir(args.output_dir, describe_run(args), args.overwrite)
    done = scan_parts(args.output_dir)
    finished = _finished_sources(done, args.rows_per_part)
    pending = [source for source in inputs if source.name not in finished]
    log(f'{len(inputs)} input files, {len(inputs) - len(pending)} already encoded in {args.output_dir}')
    started = time.perf_counter()
    timing = {'rows_encoded': 0}
    if pending:
        check_ray_address(args.ray_address)  # only a run with work to do needs the cluster
        with ThreadPoolExecutor(max_workers=1) as builder:  # build the graph while Ray starts
            graph = builder.submit(_timed_build, files, args)
            with _ray_session(args) as ray:
                model = _ship_model(ray, *graph.result(), files, config, args, timing)
                timing.update(_run_pipeline(ray, args, model, pending, set(done)))
    summary = verify_output(args.output_dir, inputs, args.rows_per_part)
    timing['seconds'] = round(time.perf_counter() - started, 3)
    steady = timing.get('steady_rows_per_s')
    steady = f' ({steady:.0f} rows/s once the actors were up)' if steady else ''
    log(f'{timing["rows_encoded"]} rows encoded in {timing["seconds"]:.1f} s{steady}; {args.output_dir} holds '
        f'{summary.rows} rows of {len(summary.inputs)} files, dim {summary.dim}, '
        f'{len(summary.skipped)} bad rows skipped: every row exactly once')
    return finish_manifest(args.output_dir, manifest, summary, timing)


def _finished_sources(done: dict[str, dict], rows_per_part: int) -> set[str]:
    """Names of the inputs whose every part is already written."""
    counts = {}
    for info in done.values():
        counts.setdefault(info['source'], [info['file_rows'], 0])[1] += 1
    return {name for name, (rows, parts) in counts.items() if parts == max(1, -(-rows // rows_per_part))}


def check_ray_address(address: str | None) -> None:
    """Refuse a ``host:port`` or ``ray://host:port`` where nothing answers: ray.init would retry it forever.

    Raises ValueError naming the address; ``None`` (a local cluster) and ``auto`` pass unchecked.
    """
    if address in (None, 'auto'):
        return
    host, _, port = address.removeprefix('ray://').rpartition(':')
    if not host or not port.isdigit():
        raise ValueError(f'-ray_address {address}: expected auto, host:port or ray://host:port')
    try:
        socket.create_connection((host.strip('[]'), int(port)), timeout=CLUSTER_ANSWER_TIMEOUT_S).close()
    except OSError as error:
        raise ValueError(f'-ray_address {address}: no Ray cluster answers there ({error.strerror or error})') from None


@contextlib.contextmanager
def _ray_session(args):
    """Join the cluster at -ray_address, or start a local one sized to the machine; leave it at the end."""
    import ray

    runtime_env = {'env_vars': {'TF_CPP_MIN_LOG_LEVEL': os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2')}}
    options = dict(logging_level=logging.INFO if args.verbose else logging.WARNING, runtime_env=runtime_env)
    if args.ray_address:
        ray.init(address=args.ray_address, **options)
    else:
        ray.init(num_cpus=os.cpu_count(), **options)
    try:
        yield ray
    finally:
        ray.shutdown()


def _timed_build(files, args) -> tuple[str, float]:
    """The frozen graph, built as the server builds it, and the seconds it took."""
    from ..server import build_graph

    started = time.perf_counter()
    return build_graph(files, args), time.perf_counter() - started


def _ship_model(ray, graph_path: str, build_s: float, files, config, args, timing: dict) -> ShippedModel:
    """Put the graph and the vocabulary in the object store (the graph file goes); record how long it all took."""
    started = time.perf_counter()
    try:
        with open(graph_path, 'rb') as graph, open(files.vocab_path, 'rb') as vocab:
            refs = ray.put(graph.read()), ray.put(vocab.read())
    finally:
        os.remove(graph_path)
    timing.update(graph_s=round(build_s, 3), ship_s=round(time.perf_counter() - started, 3))
    settings = dict(max_seq_len=args.max_seq_len, do_lower_case=args.do_lower_case,
                    add_special_tokens=not args.no_special_token, pooling_strategy=args.pooling_strategy,
                    model_max_len=config.max_position_embeddings, xla=args.xla,
                    max_segments=3 if args.task == 'classify' else 2)
    return ShippedModel(*refs, settings)


def _actor_count(ray, args) -> int:
    """-num_workers, or what the cluster holds; ValueError when the cluster cannot hold them."""
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get('CPU', 0)), resources.get('GPU', 0)
    fit = int(gpus // args.gpus_per_worker) if args.gpus_per_worker else cpus
    count = args.num_workers or fit
    if count < 1 or count > fit:
        need = f'{args.gpus_per_worker} GPU' if args.gpus_per_worker else '1 CPU'
        raise ValueError(f'the cluster has {cpus} CPUs and {gpus:g} GPUs: room for {fit} encoder actors '
                         f'of {need} each, not {count} (-num_workers, -gpus_per_worker)')
    return count


def _run_pipeline(ray, args, model: ShippedModel, pending: list[InputFile], done: set[str]) -> dict:
    """Run the Ray Data pipeline over the pending inputs, with a progress bar; return its figures."""
    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    _configure_ray_data(args.verbose)
    actors = _actor_count(ray, args)
    sources = ray.data.from_items([asdict(source) for source in pending], override_num_blocks=len(pending))
    parts = sources.map_batches(_read_parts, batch_size=1, fn_kwargs=dict(
        text_column=args.text_column, id_column=args.id_column, skip_bad_rows=args.skip_bad_rows,
        rows_per_part=args.rows_per_part, done=done), num_cpus=0, compute=TaskPoolStrategy(max(2, actors)))
    # Ray Data's defaults restart a dead actor and retry the part it held, without limit.
    written = parts.map_batches(
        PartEncoder, batch_size=1, compute=ActorPoolStrategy(size=actors), num_cpus=1,
        num_gpus=args.gpus_per_worker or None,
        fn_constructor_kwargs=dict(model=model, output_dir=os.path.abspath(args.output_dir),
                                   batch_size=args.batch_size, with_text=not args.no_text,
                                   gpus=args.gpus_per_worker))
    return _follow(written, _estimate_rows(pending), actors)


def _configure_ray_data(verbose: bool) -> None:
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = verbose  # ours shows rows/s and the time left
    context.print_on_execution_start = verbose
    # Not even errors: the command reports what failed in one line (with Ray's traceback under -verbose).
    logging.getLogger('ray.data').setLevel(logging.INFO if verbose else logging.CRITICAL)
    if not verbose:  # such as "fewer inputs than actors": true of small corpora, and harmless
        warnings.filterwarnings('ignore', category=UserWarning, module='ray.data')
    context.wait_for_min_actors_s = ACTOR_START_TIMEOUT_S  # every actor loads its model before the first part
    # A part is small next to its encoding: hand it to the least busy actor, not the one beside its reader.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "deprecated": yet Ray 2.60 still prefers the reader's node without it
        context.execution_options.actor_locality_enabled = False


def _read_parts(sources: dict, text_column, id_column, skip_bad_rows, rows_per_part, done):
    """Read task: input files -> their parts not yet written, one block each (so one actor call each)."""
    import pyarrow

    for path, name, file_format in zip(sources['path'], sources['name'], sources['format']):
        source = InputFile(str(path), str(name), str(file_format))
        rows = read_rows(source, text_column, id_column, skip_bad_rows)
        for part in plan_parts(source, rows, rows_per_part, done):
            yield pyarrow.table({key: [value] for key, value in part.items()})


def _follow(written, estimated_rows: int, actors: int) -> dict:
    """Drain the pipeline, showing rows/s and the time left; return the rows encoded and the steady rate.

    The steady rate counts from the first part written, leaving out start-up (cluster, graph, actors).
    """
    from tqdm import tqdm

    rows, first = 0, None
    with tqdm(total=estimated_rows, unit=' rows', desc=f'encoding on {actors} actors', smoothing=0.1) as bar:
        try:
            for batch in written.iter_batches(batch_size=None, batch_format='numpy'):
                if first is None:
                    first = (time.perf_counter(), int(batch['rows'].sum()))
                rows += int(batch['rows'].sum())
                bar.update(int(batch['rows'].sum() + batch['skipped'].sum()))
        except Exception as error:  # Ray wraps what a task raised: show our own error, not its traceback
            raise _cause(error, BadInputError) or error
    figures = {'rows_encoded': rows, 'actors': actors}
    if first and rows > first[1]:
        figures['steady_rows_per_s'] = round((rows - first[1]) / (time.perf_counter() - first[0]), 1)
    return figures


def _cause(error: BaseException, kind: type) -> BaseException | None:
    """The innermost ``kind`` in the chain of ``error``: Ray's wrappers are ``kind`` too, with its traceback."""
    found, seen = None, set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, kind):
            found = error
        error = getattr(error, 'cause', None) or error.__cause__
    return kind(getattr(found, 'message', str(found))) if found is not None else None


def _estimate_rows(pending: list[InputFile]) -> int:
    """Rows of the pending inputs for the progress bar: newlines, or Parquet's row count."""
    total = 0
    for source in pending:
        try:
            total += _estimate_file_rows(source)
        except (OSError, ValueError):  # the read task reports what is wrong with it, with more detail
            pass
    return total


def _estimate_file_rows(source: InputFile) -> int:
    if source.format == 'parquet':
        from pyarrow import parquet
        return parquet.read_metadata(source.path).num_rows
    with open(source.path, 'rb') as f:
        newlines = sum(chunk.count(b'\n') for chunk in iter(lambda: f.read(1 << 20), b''))
    return newlines - (source.format == 'csv')  # the header
