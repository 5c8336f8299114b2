#!/usr/bin/env python3
"""PyTorch (cuBLAS / cuSPARSE) baselines at the tour's shapes, timed with CUDA events on the same GPU.

Usage:  python3 scripts/torch_baselines.py [--json FILE] [--only FAMILY[,FAMILY]] [--reps N]

Each family adds its baselines as a function decorated with @baseline("<Family>") that yields rows made with
`row(...)` (see `dense` below for the pattern). Every row states the op, shape, dtype, FLOPs and compulsory bytes
like a tour row, so the two JSON files can be joined on (family, op, shape, dtype).
"""
import argparse
import json
import math
import statistics
import sys
import time

BASELINES = []


def baseline(family):
    """Registers a generator function `fn(ctx)` that yields result rows for `family`."""
    def register(fn):
        BASELINES.append((family, fn))
        return fn
    return register


class Context:
    """What a baseline needs: torch, the device, timing with weight rotation past L2, and the row format."""

    def __init__(self, torch, reps):
        self.torch = torch
        self.reps = reps
        self.device = torch.device("cuda")
        props = torch.cuda.get_device_properties(0)
        self.gpu = props.name
        self.l2_bytes = getattr(props, "L2_cache_size", 50 << 20)

    def copies(self, weight_bytes):
        """How many copies of a weight make the rotation exceed twice the L2 cache (as the tour does)."""
        return int(min(16, max(1, 2 * self.l2_bytes // max(1, weight_bytes) + 1)))

    def time_ms(self, fn, rotations=1, warmup=3):
        """Median milliseconds of fn(i) over self.reps calls, i rotating over `rotations` inputs."""
        torch = self.torch
        for i in range(warmup):
            fn(i % rotations)
        torch.cuda.synchronize()
        times = []
        for r in range(self.reps):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn(r % rotations)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return statistics.median(times)

    def row(self, family, op, shape, dtype, flops, bytes_, ms, notes=None):
        return {
            "family": family, "op": op, "shape": shape, "dtype": dtype, "device": self.gpu,
            "medianMs": ms, "tflopPerS": flops / (ms * 1e-3) / 1e12 if ms > 0 else 0.0,
            "gbPerS": bytes_ / (ms * 1e-3) / 1e9 if ms > 0 else 0.0,
            "flops": flops, "bytes": bytes_, "notes": notes or {},
            "torch": torch_version(self.torch), "date": time.strftime("%Y-%m-%d", time.gmtime()),
        }


def torch_version(torch):
    return f"{torch.__version__} (CUDA {torch.version.cuda})"


# LLaMA-7B layer shapes (M = out features, K = in features), as in the tour.
LLAMA7B = [(4096, 4096), (11008, 4096), (4096, 11008)]


@baseline("Dense")
def dense(ctx):
    """cuBLAS f16 GEMM Y = X·Wᵀ (torch.matmul) for N = 16 and 4096 tokens, and GEMV y = W·x (torch.mv)."""
    torch = ctx.torch
    dt = torch.float16
    for m, k in LLAMA7B:
        copies = ctx.copies(2 * m * k)
        ws = [torch.randn(m, k, device=ctx.device, dtype=dt) * 0.05 for _ in range(copies)]
        x1 = torch.randn(k, device=ctx.device, dtype=dt)
        ms = ctx.time_ms(lambda i: torch.mv(ws[i], x1), copies)
        yield ctx.row("Dense", "gemv y=W·x", f"M={m} K={k}", "f16", 2.0 * m * k, 2.0 * (m * k + k + m), ms,
                      {"impl": "torch.mv", "weightCopies": str(copies)})
        for n in (16, 4096):
            x = torch.randn(n, k, device=ctx.device, dtype=dt)
            ms = ctx.time_ms(lambda i: torch.matmul(x, ws[i].t()), copies)
            yield ctx.row("Dense", "gemm Y=X·Wᵀ", f"M={m} K={k} N={n}", "f16", 2.0 * m * n * k,
                          2.0 * (m * k + n * k + n * m), ms, {"impl": "torch.matmul", "weightCopies": str(copies)})
        del ws
        torch.cuda.empty_cache()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--only", help="comma-separated families")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed: no baselines", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("no CUDA device visible to torch: no baselines", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    ctx = Context(torch, args.reps)
    only = set(args.only.split(",")) if args.only else None
    rows, failed = [], 0
    print(f"device: {ctx.gpu}  torch {torch_version(torch)}")
    print(f"{'family':<14} {'op':<22} {'shape':<26} {'type':<5} {'median ms':>10} {'GB/s':>9} {'TFLOP/s':>8}")
    for family, fn in BASELINES:
        if only and family not in only:
            continue
        try:
            for r in fn(ctx):
                rows.append(r)
                print(f"{family:<14} {r['op']:<22} {r['shape']:<26} {r['dtype']:<5} {r['medianMs']:>10.4f} "
                      f"{r['gbPerS']:>9.1f} {r['tflopPerS']:>8.2f}", flush=True)
        except Exception as e:  # one family's failure must not hide the others
            failed += 1
            print(f"{family}: {fn.__name__} failed: {e!r}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
        print(f"wrote {len(rows)} rows to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
