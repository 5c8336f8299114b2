#!/usr/bin/env bash
# The GPU check (docs/design.md §8), in two halves.
#
#   scripts/gpu-check.sh pack          here, with the .NET SDK: publishes Kernels.Tests and Kernels.Bench
#                                      self-contained for linux-x64 into one folder (publish/gpu, shared runtime)
#                                      and packs it as gpu-bundle/kernels-gpu.tar.gz (must stay < 64 MiB).
#   scripts/gpu-check.sh run [OUTDIR]  there, on the GPU machine (driver, CUDA, PyTorch, Python; no SDK, no
#                                      network): unpacks the bundle; phase 1 loads every catalog kernel on the
#                                      device (registers and local bytes from the driver: kernels-device.json) and
#                                      runs the GPU tests (tests.log), both written before phase 2, the tour at
#                                      full shapes (tour.json) and scripts/torch_baselines.py (torch.json; skipped,
#                                      not failed, without PyTorch). Everything lands in OUTDIR (default: $OUT,
#                                      else ./gpu-results) with gpu-check.log.
#
# Options for run (environment): GPU_TESTS=all runs the whole test suite instead of the GPU tests only;
# TOUR_OPS=REGEX restricts the tour (e.g. "Dense|Sparse"); TORCH_ONLY=Dense,Sparse restricts the baselines;
# SKIP_KERNELS=1 / SKIP_TESTS=1 / SKIP_TOUR=1 / SKIP_TORCH=1 skip a stage.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$root/gpu-bundle/kernels-gpu.tar.gz"
limit=$((64 * 1024 * 1024))

pack() {
  set -e
  local stage="$root/publish/gpu"
  rm -rf "$stage" && mkdir -p "$stage" "$root/gpu-bundle"
  for project in Kernels.Tests Kernels.Bench; do
    dotnet publish "$root/$project/$project.csproj" -c Release -r linux-x64 --self-contained true \
      -p:DebugType=none -p:GenerateDocumentationFile=false -o "$stage" --nologo -v quiet
  done
  tar -C "$root/publish" -czf "$bundle" gpu
  local size
  size=$(stat -c %s "$bundle")
  echo "bundle: $bundle ($((size / 1024 / 1024)) MiB)"
  if [ "$size" -ge "$limit" ]; then echo "bundle is over 64 MiB: it will not travel" >&2; exit 1; fi
}

run() {
  local out="${1:-${OUT:-$root/gpu-results}}"
  mkdir -p "$out"
  local log="$out/gpu-check.log"
  : >"$log"
  say() { echo "$*" | tee -a "$log"; }
  [ -f "$bundle" ] || { say "missing $bundle: run 'scripts/gpu-check.sh pack' on a machine with the .NET SDK"; exit 2; }
  local work
  work="$(mktemp -d /tmp/kernels-gpu.XXXXXX)"
  tar -C "$work" -xzf "$bundle"
  local app="$work/gpu"
  chmod +x "$app/Kernels.Tests" "$app/Kernels.Bench"
  export KERNELS_DEVICE=cuda DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  say "== $(date -u +%FT%TZ) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$log"
  local status=0

  if [ "${SKIP_KERNELS:-0}" != 1 ]; then
    say "== every catalog kernel on the device (driver JIT of the promoted PTX)"
    (cd "$app" && ./Kernels.Bench kernels --device --json "$out/kernels-device.json") 2>&1 | tee "$out/kernels-device.log" | tail -n 5 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  fi

  if [ "${SKIP_TESTS:-0}" != 1 ]; then
    say "== tests (${GPU_TESTS:-gpu only})"
    local filter=(-method "*Gpu*" -method "*Cuda*")
    [ "${GPU_TESTS:-}" = all ] && filter=()
    (cd "$app" && ./Kernels.Tests "${filter[@]}") 2>&1 | tee "$out/tests.log" | tail -n 40 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  fi

  if [ "${SKIP_TOUR:-0}" != 1 ]; then
    say "== tour --full"
    local ops=()
    [ -n "${TOUR_OPS:-}" ] && ops=(--ops "$TOUR_OPS")
    (cd "$app" && ./Kernels.Bench tour --full --json "$out/tour.json" "${ops[@]}") 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  fi

  if [ "${SKIP_TORCH:-0}" != 1 ] && ! python3 -c "import torch" >/dev/null 2>&1; then
    say "== PyTorch baselines skipped: python3 cannot import torch (not a failure)"
  elif [ "${SKIP_TORCH:-0}" != 1 ]; then
    say "== PyTorch baselines"
    local only=()
    [ -n "${TORCH_ONLY:-}" ] && only=(--only "$TORCH_ONLY")
    python3 "$root/scripts/torch_baselines.py" --json "$out/torch.json" "${only[@]}" 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  fi

  rm -rf "$work"
  say "== done (status $status); results in $out"
  return "$status"
}

case "${1:-}" in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/gpu-check.sh pack | run [OUTDIR]" >&2; exit 2 ;;
esac
