"""Shaping results for the caller: output format, joining fetched results, printing dicts."""

import numpy as np

from .protocol import decode_encoding


def decode_response(frames, output_fmt):
    """Response of an encoding reply, with the embedding in ``output_fmt`` ('ndarray' or 'list')."""
    response = decode_encoding(frames)
    if output_fmt == 'list':
        return response._replace(embedding=response.embedding.tolist())
    return response


def join_embeddings(responses, sort, concat, output_fmt):
    """The embeddings of ``responses`` (sorted by request id if asked), as a list or concatenated."""
    if sort:
        responses = sorted(responses, key=lambda r: r.id)
    embeddings = [r.embedding for r in responses]
    if not concat:
        return embeddings
    if output_fmt == 'ndarray':
        return np.concatenate(embeddings, axis=0)
    return [row for rows in embeddings for row in rows]


def print_dict(values, title):
    """Print ``values`` one ``key = value`` per line, keys right-aligned, under ``title``."""
    print(title)
    width = max(map(len, values), default=0)
    for key, value in values.items():
        print(f'{key:>{width}} = {value}')
