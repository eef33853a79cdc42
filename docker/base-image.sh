#!/bin/sh
# Make a local Debian bookworm base image for the CPU image, where the public Python image cannot be pulled:
#   docker/base-image.sh NAME
# debootstrap (minbase, Python 3.11 with venv, CA certificates, useradd) from the Debian mirror this
# machine's apt already uses, imported into the local container storage as NAME. Nothing happens when
# NAME is there already. Needs root, debootstrap and podman.
set -eu

name="${1:?usage: base-image.sh NAME}"
suite=bookworm

if podman image exists "$name"; then
    echo "base image $name: already in the local storage"
    exit 0
fi

# The first deb URI of this machine's apt sources: deb822 files first, then the one-line format.
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; exit } }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
    echo "base-image.sh: no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2
    exit 2
fi

start=$(date +%s)
root=$(mktemp -d)
# debootstrap mounts /proc (and more) inside the tree: never let the clean-up cross into them.
trap 'umount -R "$root"/proc "$root"/sys "$root"/dev 2>/dev/null || :; rm -rf --one-file-system "$root" "$root.log"' EXIT
echo "base image $name: debootstrap $suite into $root"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd "$suite" "$root" "$mirror" \
    >"$root.log" 2>&1 || { tail -n 20 "$root.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --quiet - "$name" >/dev/null
echo "base image $name: made in $(($(date +%s) - start)) s"
