#!/bin/sh
# Build the CPU image from the repository root:  docker/build-image.sh [TAG]   (TAG: bert-serving:cpu)
#
# With a Docker engine: docker build. Otherwise buildah (root, --isolation chroot), with pip reaching
# packages the way this machine's pip does (docker/pip_build_config.py). The base: $BASE_IMAGE when set;
# else the Dockerfile's public one when it can be pulled, or a local Debian one (docker/base-image.sh);
# BERT_SERVING_LOCAL_BASE=1 goes to the local one at once. Prints the build time and the image size.
# $PYTHON runs pip_build_config.py (default python3).
set -eu

tag="${1:-bert-serving:cpu}"
dockerfile=docker/Dockerfile.cpu
local_base=bert-serving-base:bookworm
python="${PYTHON:-python3}"

choose_base() {
    if [ -n "${BASE_IMAGE:-}" ]; then
        echo "$BASE_IMAGE"
        return
    fi
    public=$(sed -n 's/^ARG BASE_IMAGE=//p' "$dockerfile")
    if [ "${BERT_SERVING_LOCAL_BASE:-0}" != 1 ] && timeout 300 buildah pull -q "$public" >/dev/null 2>&1; then
        echo "$public"
        return
    fi
    echo "build-image.sh: using the local Debian base $local_base instead of $public" >&2
    docker/base-image.sh "$local_base" >&2
    echo "$local_base"
}

build_with_buildah() {
    base=$1
    pip_conf=$(mktemp)
    log=$(mktemp)
    trap 'rm -f "$pip_conf" "$log"' EXIT
    # One mount option a line; the paths come from pip's own settings and hold no blanks.
    mounts=$("$python" docker/pip_build_config.py "$pip_conf" | tr '\n' ' ')
    # --format docker keeps the HEALTHCHECK (OCI configs have none). pip's notices go to the log.
    # shellcheck disable=SC2086  # $mounts is a list of options
    buildah bud --isolation chroot --format docker --layers --ignorefile "$dockerfile.dockerignore" \
        --build-arg BASE_IMAGE="$base" $mounts -f "$dockerfile" -t "$tag" . >"$log" 2>&1 ||
        { tail -n 40 "$log" >&2; echo "build-image.sh: the build failed (above: the end of its log)" >&2; exit 1; }
}

start=$(date +%s)
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    docker build -f "$dockerfile" ${BASE_IMAGE:+--build-arg BASE_IMAGE="$BASE_IMAGE"} -t "$tag" .
    size=$(docker image inspect --format '{{.Size}}' "$tag")
elif command -v buildah >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "build-image.sh: buildah builds here as root only (no Docker engine): run it with sudo" >&2
        exit 2
    fi
    base=$(choose_base)
    start=$(date +%s)  # the build itself, without making the base
    build_with_buildah "$base"
    size=$(buildah inspect --type image --format '{{.Size}}' "$tag" 2>/dev/null || podman image inspect --format '{{.Size}}' "$tag")
else
    echo "build-image.sh: neither docker nor buildah is installed" >&2
    exit 2
fi
echo "image $tag${base:+ on $base}: built in $(($(date +%s) - start)) s, $((size / 1000000)) MB"
