#!/usr/bin/env bash
# Fetches NVIDIA's offline assembler tools (ptxas, cuobjdump, nvdisasm; CUDA 12.4) from Debian trixie's non-free
# `nvidia-cuda-toolkit` package into a cache folder, without installing anything or touching the machine's apt
# setup: a private sources list, lists and cache, then `apt-get download` and `dpkg-deb -x`. The binaries need only
# libc. Prints the folder that holds them (also when they were cached already). Exit 1 when they cannot be had.
#   usage: scripts/fetch-cuda-tools.sh [CACHE_DIR]     (default: $KERNELS_CUDA_TOOLS or ~/.cache/kernels-cuda-tools)
set -euo pipefail
cache=${1:-${KERNELS_CUDA_TOOLS:-$HOME/.cache/kernels-cuda-tools}}
bin="$cache/bin"
if [ -x "$bin/ptxas" ] && [ -x "$bin/cuobjdump" ] && [ -x "$bin/nvdisasm" ]; then echo "$bin"; exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc" "$bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie non-free" > "$work/etc/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/etc/sources.list" -o "Dir::Etc::SourceParts=-"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Architecture=amd64"
          -o "Acquire::Languages=none" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$work" && apt-get "${apt_opts[@]}" -qq download nvidia-cuda-toolkit >&2)
deb=$(ls "$work"/nvidia-cuda-toolkit_*.deb | head -n 1)
dpkg-deb -x "$deb" "$work/x"
for tool in ptxas cuobjdump nvdisasm; do
  found=$(find "$work/x" -name "$tool" -type f | head -n 1)
  [ -n "$found" ] || { echo "fetch-cuda-tools: $tool is not in $(basename "$deb")" >&2; exit 1; }
  install -m 0755 "$found" "$bin/$tool"
done
"$bin/ptxas" --version >&2
echo "$bin"
