#!/bin/sh
# Start bert-serving in a container:  entrypoint.sh [NUM_WORKER] [bert-serving-start options...]
#
#   docker run -v "$PWD/models/minilm:/model" -p 5555:5555 -p 5556:5556 -p 8125:8125 IMAGE 2 -max_seq_len 64
#
# The model folder is mounted at /model; ZeroMQ listens on 5555 (requests) and 5556 (results), the
# HTTP proxy on 8125. Options after the worker count go to bert-serving-start as they are; later
# ones win, so they may change the ports too. `entrypoint.sh healthcheck` exits 0 once /ready says
# every worker is ready (the images' HEALTHCHECK).
# Environment: BERT_SERVING_MODEL_DIR (default /model), BERT_SERVING_HTTP_PORT (default 8125),
# BERT_SERVING_CPU=1 (adds -cpu), BERT_SERVING_START (the command to run, default bert-serving-start).
set -eu

model_dir="${BERT_SERVING_MODEL_DIR:-/model}"
http_port="${BERT_SERVING_HTTP_PORT:-8125}"

if [ "${1:-}" = healthcheck ]; then
    exec python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=4)" \
        "http://127.0.0.1:${http_port}/ready"
fi

num_worker=1
case "${1:-}" in
    '' | -*) ;;  # no worker count: options only
    *[!0-9]* | 0)
        echo "entrypoint.sh: the first argument is the number of workers (a positive integer), got '$1'" >&2
        exit 2 ;;
    *) num_worker="$1"; shift ;;
esac

if [ "${BERT_SERVING_CPU:-0}" = 1 ]; then
    set -- -cpu "$@"
fi

if [ ! -d "$model_dir" ]; then
    echo "entrypoint.sh: no model folder at $model_dir; mount one, e.g. docker run -v \"\$PWD/models/minilm:/model\" ..." >&2
    exit 2
fi

exec "${BERT_SERVING_START:-bert-serving-start}" -model_dir "$model_dir" -num_worker "$num_worker" \
    -port 5555 -port_out 5556 -http_port "$http_port" "$@"
