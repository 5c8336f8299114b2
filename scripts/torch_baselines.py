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

# Timing (docs/design.md §6, as the tour's LaunchTiming): R back-to-back calls between two CUDA events, the span at least
# SPAN_MS so launch latency and Python dispatch do not dominate µs-scale rows; R at most MAX_LAUNCHES.
SPAN_MS = 1.0
MAX_LAUNCHES = 4096
REFINEMENTS = 3


class Timing(float):
    """Milliseconds per call (the float value) and the calls per timed span (.launches)."""

    def __new__(cls, ms, launches):
        t = super().__new__(cls, ms)
        t.launches = launches
        return t


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

    def span_ms(self, fn, launches, first=0, rotations=1):
        """Milliseconds between two CUDA events around `launches` back-to-back calls fn(first), fn(first + 1), ...
        (the index taken modulo `rotations`)."""
        torch = self.torch
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(first, first + launches):
            fn(i % rotations)
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def launches_for(self, fn, rotations=1):
        """R, the back-to-back calls whose span lasts at least SPAN_MS: from one timed call, then from spans of R calls
        until one is long enough (one call alone overstates the time per call by the launch latency and Python
        dispatch), at most MAX_LAUNCHES. The same rule as the tour's LaunchTiming."""
        launches = 1
        for _ in range(REFINEMENTS + 1):
            span = self.span_ms(fn, launches, 0, rotations)
            if span >= SPAN_MS or launches >= MAX_LAUNCHES:
                break
            per = span / launches
            wanted = math.ceil(SPAN_MS / per) if per > 0 else MAX_LAUNCHES
            launches = int(min(MAX_LAUNCHES, max(wanted, launches + 1)))
        return launches

    def time_ms(self, fn, rotations=1, warmup=2):
        """Milliseconds per call of fn(i), i rotating over `rotations` inputs: R back-to-back calls between two CUDA
        events (R calibrated so a span lasts at least SPAN_MS), the median over self.reps spans, divided by R. Returns
        a Timing (a float) that also carries R as .launches, which `row` records."""
        torch = self.torch
        for i in range(warmup):
            fn(i % rotations)
        torch.cuda.synchronize()
        launches = self.launches_for(fn, rotations)
        times = [self.span_ms(fn, launches, r * launches, rotations) / launches for r in range(self.reps)]
        return Timing(statistics.median(times), launches)

    def row(self, family, op, shape, dtype, flops, bytes_, ms, notes=None):
        return {
            "family": family, "op": op, "shape": shape, "dtype": dtype, "device": self.gpu,
            "medianMs": ms, "launchesPerSpan": getattr(ms, "launches", 1), "tflopPerS": flops / (ms * 1e-3) / 1e12 if ms > 0 else 0.0,
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


@baseline("LoRA")
def lora(ctx):
    """Eager PyTorch LoRA (LoRAFusion's "Torch LoRA" baseline): Y = X·Wᵀ + α·(dropout(X)·Aᵀ)·Bᵀ in f16 at
    M = 8192, K = N = 4096, r = 16, p = 0.1 — forward alone and forward + backward through autograd — and the bare
    base GEMM X·Wᵀ for reference. Op names match the tour's LoRA rows."""
    torch = ctx.torch
    dt = torch.float16
    m, k, n, r, p = 8192, 4096, 4096, 16, 0.1
    alpha = 32.0 / r
    dev = ctx.device
    x = torch.randn(m, k, device=dev, dtype=dt)
    w = torch.randn(n, k, device=dev, dtype=dt) * 0.02
    a = (torch.randn(r, k, device=dev, dtype=dt) * 0.02).requires_grad_()
    b = (torch.randn(n, r, device=dev, dtype=dt) * 0.02).requires_grad_()
    xg = x.clone().requires_grad_()
    dy = torch.randn(m, n, device=dev, dtype=dt)
    drop = torch.nn.Dropout(p)
    fwd_flops = 2.0 * m * n * k + 2.0 * m * k * r + 2.0 * m * n * r
    fwd_bytes = 2.0 * (m * k + n * k + r * k + n * r + m * n) + 4.0 * m * r
    shape = f"M={m} K={k} N={n}"

    def forward(_):
        with torch.no_grad():
            return x @ w.t() + (drop(x) @ a.t() @ b.t()) * alpha
    ms = ctx.time_ms(forward)
    yield ctx.row("LoRA", f"lora fused forward r={r} p={p}", shape, "f16", fwd_flops, fwd_bytes, ms, {"impl": "torch eager"})

    def step(_):
        xg.grad = None
        a.grad = None
        b.grad = None
        y = xg @ w.t() + (drop(xg) @ a.t() @ b.t()) * alpha
        y.backward(dy)
    ms = ctx.time_ms(step)
    bwd_flops = 4.0 * m * n * r + 4.0 * m * r * k + 2.0 * m * n * k
    yield ctx.row("LoRA", f"lora forward+backward r={r} p={p}", shape, "f16", fwd_flops + bwd_flops, 0.0, ms,
                  {"impl": "torch eager autograd", "note": "tour times forward and backward as separate rows"})

    ms = ctx.time_ms(lambda _: x @ w.t())
    yield ctx.row("LoRA", "base GEMM X·Wᵀ (no LoRA)", shape, "f16", 2.0 * m * n * k, 2.0 * (m * k + n * k + m * n), ms,
                  {"impl": "torch.matmul"})
    del x, w, a, b, xg, dy
    torch.cuda.empty_cache()


# OPT-30B layer shapes (attention out, FFN up), Flash-LLM's token counts and sparsities, as in the Sparse tour.
OPT30B = [(7168, 7168), (28672, 7168)]


@baseline("Sparse")
def sparse(ctx):
    """Y = X·Wᵀ for sparse W: cuBLAS on the dense W (what SpMM must beat) and cuSPARSE CSR (torch.sparse.mm)."""
    torch = ctx.torch
    dt = torch.float16
    for m, k in OPT30B:
        for s in (0.7, 0.8, 0.9):
            w = torch.randn(m, k, device=ctx.device, dtype=dt) * 0.05
            w = w * (torch.rand(m, k, device=ctx.device) >= s).to(dt)
            for n in (8, 16, 32):
                x = torch.randn(n, k, device=ctx.device, dtype=dt)
                shape = f"M={m} K={k} N={n}"
                op = f"SpMM {round(s * 100)} %"
                flops = 2.0 * m * n * k
                if s == 0.7:  # the dense product does not depend on the sparsity: once per shape and N
                    copies = ctx.copies(2 * m * k)
                    ws = [w.clone() for _ in range(copies)]
                    ms = ctx.time_ms(lambda i: torch.matmul(x, ws[i].t()), copies)
                    yield ctx.row("Sparse", "dense cuBLAS", shape, "f16", flops, 2.0 * (m * k + n * k + n * m), ms,
                                  {"impl": "torch.matmul", "weightCopies": str(copies)})
                    del ws
                try:
                    csr = w.to_sparse_csr()
                    nnz = csr.values().numel()
                    csr_bytes = 2 * nnz + 4 * nnz + 4 * (m + 1)
                    xt = x.t().contiguous()
                    ms = ctx.time_ms(lambda i: torch.sparse.mm(csr, xt))
                    yield ctx.row("Sparse", op, shape, "f16", flops, csr_bytes + 2.0 * (n * k + n * m), ms,
                                  {"impl": "torch.sparse.mm (cuSPARSE CSR)", "nnz": str(nnz)})
                    del csr
                except Exception as e:  # fp16 CSR support varies across torch/cuSPARSE versions
                    yield ctx.row("Sparse", op, shape, "f16", flops, 0.0, 0.0,
                                  {"impl": "torch.sparse.mm (cuSPARSE CSR)", "error": repr(e)[:200]})
            del w
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
    print(f"{'family':<14} {'op':<22} {'shape':<26} {'type':<5} {'median ms':>10} {'R':>5} {'GB/s':>9} {'TFLOP/s':>8}")
    for family, fn in BASELINES:
        if only and family not in only:
            continue
        try:
            for r in fn(ctx):
                rows.append(r)
                print(f"{family:<14} {r['op']:<22} {r['shape']:<26} {r['dtype']:<5} {r['medianMs']:>10.4f} {r['launchesPerSpan']:>5} "
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
