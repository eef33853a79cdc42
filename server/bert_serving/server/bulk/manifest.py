"""``_manifest.json``: what made an output folder (model, options), what it holds, and when it ran.

It is written before the first part, so a later run can tell whether the folder's parts were made with
its own model and options (then it resumes) or not (then it refuses, unless -overwrite).
"""
from __future__ import annotations

import json
import os
import time

from .parts import PART_PREFIX, TEMP_PREFIX, OutputSummary

MANIFEST = '_manifest.json'
# The options that change what a part holds; the others (cluster, actors, batch size) do not.
MODEL_OPTIONS = ('model_dir', 'tuned_model_dir', 'ckpt_name', 'config_name')
ENCODING_OPTIONS = ('max_seq_len', 'pooling_strategy', 'pooling_layer', 'do_lower_case', 'mask_cls_sep',
                    'no_special_token', 'no_position_embeddings', 'fp16', 'xla', 'input_format', 'text_column',
                    'id_column', 'rows_per_part', 'no_text')


class OutputDirError(ValueError):
    """The output folder holds something this run must not add to."""


def describe_run(args) -> dict:
    """The model and options of a run, as the manifest records and compares them."""
    def plain(value):
        return getattr(value, 'name', value)

    model = {key: os.path.abspath(value) if key.endswith('_dir') and value else value
             for key, value in ((key, getattr(args, key)) for key in MODEL_OPTIONS)}
    return {'model': model, 'options': {key: plain(getattr(args, key)) for key in ENCODING_OPTIONS}}


def open_output_dir(output_dir: str, run: dict, overwrite: bool) -> dict:
    """Make the folder ready for ``run``: new, resumed, or emptied of our files with ``overwrite``.

    Returns the manifest to keep updating. OutputDirError when the folder holds another run's parts.
    """
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, MANIFEST)
    ours = [name for name in os.listdir(output_dir)
            if name.startswith((PART_PREFIX, TEMP_PREFIX)) or name == MANIFEST]
    if overwrite:
        for name in ours:
            os.remove(os.path.join(output_dir, name))
    elif os.path.exists(path):
        _check_same_run(path, _load(path), run)
    elif ours:
        raise OutputDirError(f'{output_dir} holds part files but no {MANIFEST}: '
                             f'use another -output_dir, or -overwrite to delete them')
    manifest = {**run, 'status': 'running', 'started': _now()}
    write_manifest(output_dir, manifest)
    return manifest


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise OutputDirError(f'{path} cannot be read ({error}): use -overwrite to start over') from None


def _check_same_run(path: str, existing: dict, run: dict) -> None:
    differences = [f'{key} {existing.get(section, {}).get(key)!r} there, {value!r} here'
                   for section in ('model', 'options') for key, value in run[section].items()
                   if existing.get(section, {}).get(key) != value]
    if differences:
        raise OutputDirError(f'{os.path.dirname(path)} was made with other settings ({"; ".join(differences)}): '
                             f'use another -output_dir, or -overwrite to start over')


def finish_manifest(output_dir: str, manifest: dict, summary: OutputSummary, timing: dict) -> dict:
    """Record what the folder holds once the final check has passed, and this run's figures."""
    manifest.update(status='complete', finished=_now(), inputs=summary.inputs, rows=summary.rows,
                    dim=summary.dim, skipped_rows=len(summary.skipped), skipped=summary.skipped,
                    schema={'id': 'string', 'text': None if manifest['options']['no_text'] else 'string',
                            'embedding': f'fixed_size_list<float32>[{summary.dim}]'},
                    last_run=timing, versions=_versions())
    write_manifest(output_dir, manifest)
    return manifest


def _versions() -> dict:
    import pyarrow
    import ray

    from ..version import __version__
    return {'bert_serving': __version__, 'ray': ray.__version__, 'pyarrow': pyarrow.__version__}


def write_manifest(output_dir: str, manifest: dict) -> None:
    path = os.path.join(output_dir, MANIFEST)
    temporary = f'{path}.{os.getpid()}.tmp'
    with open(temporary, 'w') as f:
        json.dump(manifest, f, indent=2)
    os.replace(temporary, path)


def _now() -> str:
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())
