"""The alternative users have: encode in-process with PyTorch `transformers` (runs in .venv-bench only).

Same model folder (Hugging Face layout), same length cap, mean pooling of the same layer as the server's
REDUCE_MEAN (padding masked out). Tokenization is included in the time, as it is in the service's.
After loading and one warm-up batch it prints ``ready``; then each line ``run`` on stdin encodes all the
sentences and prints the seconds it took as JSON, so that a caller can time it in turn with something
else. At the end of stdin it saves the last vectors (float32 .npy) to -vectors_out when given.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer


def encode(model, tokenizer, sentences, max_seq_len, batch, layer) -> np.ndarray:
    out = []
    for start in range(0, len(sentences), batch):
        inputs = tokenizer(sentences[start:start + batch], truncation=True, max_length=max_seq_len,
                           padding=True, return_tensors='pt')
        hidden = model(**inputs, output_hidden_states=True).hidden_states[layer]  # [0] is the embeddings
        mask = inputs['attention_mask'].unsqueeze(-1).to(hidden.dtype)
        out.append(((hidden * mask).sum(1) / (mask.sum(1) + 1e-10)).numpy())
    return np.concatenate(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-model_dir', required=True)
    parser.add_argument('-sentences_file', required=True, help='JSON list of sentences')
    parser.add_argument('-max_seq_len', type=int, default=25)
    parser.add_argument('-batch', type=int, default=256)
    parser.add_argument('-layer', type=int, default=-2, help='encoder layer, -1 = last')
    parser.add_argument('-vectors_out', default=None)
    args = parser.parse_args(argv)

    sentences = json.loads(Path(args.sentences_file).read_text(encoding='utf-8'))
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModel.from_pretrained(args.model_dir).eval()
    info = {'torch': torch.__version__, 'threads': torch.get_num_threads()}
    with torch.inference_mode():
        encode(model, tokenizer, sentences[:args.batch], args.max_seq_len, args.batch, args.layer)  # warm up
        print(json.dumps({'ready': True, **info}), flush=True)
        vectors = None
        for line in sys.stdin:
            if line.strip() == 'run':
                start = time.perf_counter()
                vectors = encode(model, tokenizer, sentences, args.max_seq_len, args.batch, args.layer)
                print(json.dumps({'seconds': time.perf_counter() - start}), flush=True)
    if args.vectors_out and vectors is not None:
        np.save(args.vectors_out, vectors.astype(np.float32))


if __name__ == '__main__':
    main()
