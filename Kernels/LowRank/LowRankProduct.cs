using ILGPU;
using ILGPU.Runtime;
using Kernels.Cuda.Primitives;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.LowRank;

/// <summary>How <see cref="LowRankProduct.StreamMatmul{T}"/> computed its result.</summary>
public enum StreamMatmulPath
{
    /// <summary>r ≤ 128: each group keeps its rows' r-wide intermediate (16-bit) in shared memory and sweeps all of N on tensor cores (nothing of size M×r in device memory).</summary>
    OnePass,

    /// <summary>r &gt; 128: T = (x·V)⊙s is written to an M×r workspace (16-bit) by the tile engine, then y = T·Uᵀ on the tile engine.</summary>
    TwoStage,
}

/// <summary>
/// Products with a factorized weight W ≈ U·diag(s)·Vᵀ (SVD-compressed layers, FlashSVD), computed without forming
/// W and without full-size intermediates.
/// </summary>
public static class LowRankProduct
{
    /// <summary>Largest rank the one-pass path keeps on chip.</summary>
    public const int OnePassMaxRank = StreamMatmulKernel.MaxRank;

    /// <summary>The path <see cref="StreamMatmul{T}"/> takes for rank <paramref name="rank"/>.</summary>
    public static StreamMatmulPath PathFor(int rank) => rank <= OnePassMaxRank ? StreamMatmulPath.OnePass : StreamMatmulPath.TwoStage;

    /// <summary>Device workspace (in elements of the activation type) the call requests: 0 one-pass, M·r two-stage.</summary>
    public static long WorkspaceElements(long m, long rank) => PathFor((int)Math.Min(rank, int.MaxValue)) == StreamMatmulPath.OnePass ? 0 : m * rank;

    /// <summary>
    /// y = ((x·V)⊙s)·Uᵀ (+ bias) for 16-bit x, V, U, bias and y (f16 or bf16) with f32 accumulation; s is f32.
    /// Asynchronous on x's stream. Both paths multiply on tensor cores (<c>mma.sync</c>; on a CPU accelerator the device
    /// needs 32-lane warps). For r ≤ 128 the M×r intermediate never reaches device memory
    /// (<see cref="StreamMatmulPath.OnePass"/>); above that it is staged through an M×r workspace. Either way T is
    /// rounded to the operand type (RNE) before the second product.
    /// </summary>
    /// <param name="x">Activations, M×K (dense).</param>
    /// <param name="v">Right factor V, K×r (dense).</param>
    /// <param name="s">Scales (singular values), r, f32.</param>
    /// <param name="u">Left factor U, N×r (dense).</param>
    /// <param name="bias">Bias, N; a default view for none.</param>
    /// <param name="y">Output, M×N (dense).</param>
    /// <returns>The path taken.</returns>
    public static StreamMatmulPath StreamMatmul<T>(ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> v,
        ReadOnlyDeviceTensorSpan<float> s, ReadOnlyDeviceTensorSpan<T> u, ReadOnlyDeviceTensorSpan<T> bias, DeviceTensorSpan<T> y)
        where T : unmanaged
    {
        if (typeof(T) != typeof(DeviceHalf) && typeof(T) != typeof(BFloat16))
            throw new NotSupportedException($"StreamMatmul takes f16 (ILGPU.Half) or bf16 (BFloat16) operands, not {typeof(T).Name}.");
        var device = x.Device ?? throw new ArgumentException("x is a default (empty) view.", nameof(x));
        Check(device, x, nameof(x));
        Check(device, v, nameof(v));
        Check(device, u, nameof(u));
        Check(device, y.AsReadOnly(), nameof(y));
        Require.SameDevice(device, s.Device, nameof(s));
        Require.Dense(s, nameof(s));
        long m = x.Lengths[0], k = x.Lengths[1], r = v.Lengths[1], n = u.Lengths[0];
        if (v.Lengths[0] != k)
            throw new ArgumentException($"v has lengths {TensorShape.Format(v.Lengths)} but x {TensorShape.Format(x.Lengths)} needs [{k}, r].", nameof(v));
        if (r < 1) throw new ArgumentOutOfRangeException(nameof(v), $"rank must be at least 1, got v {TensorShape.Format(v.Lengths)}.");
        if (u.Lengths[1] != r)
            throw new ArgumentException($"u has lengths {TensorShape.Format(u.Lengths)} but rank {r} needs [N, {r}].", nameof(u));
        Require.Length(s.FlattenedLength, r, nameof(s), $"rank {r}");
        LowRankChecks.Shape2(y.Lengths, m, n, nameof(y));
        if (!bias.IsEmptyView)
        {
            Require.SameDevice(device, bias.Device, nameof(bias));
            Require.Dense(bias, nameof(bias));
            Require.Length(bias.FlattenedLength, n, nameof(bias), $"N = {n} outputs");
        }
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(x, nameof(x)));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(v, nameof(v)));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(u, nameof(u)));
        if (!bias.IsEmptyView) Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(bias, nameof(bias)));
        if (m * Math.Max(n, k) >= int.MaxValue || r * Math.Max(n, k) >= int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(x), $"StreamMatmul supports up to 2^31 elements per operand; got x {TensorShape.Format(x.Lengths)}, u {TensorShape.Format(u.Lengths)}.");
        if (!device.IsCuda && device.Accelerator.WarpSize != 32)
            throw new NotSupportedException($"StreamMatmul runs on tensor cores (mma.sync), which need 32-lane warps; {device.Name} has {device.Accelerator.WarpSize}.");
        if (m == 0 || n == 0) return PathFor((int)r);

        var path = PathFor((int)r);
        var xv = x.View.AsContiguous();
        var vv = v.View.AsContiguous();
        var uv = u.View.AsContiguous();
        var yv = y.View.AsContiguous();
        bool hasBias = !bias.IsEmptyView;
        var bv = hasBias ? bias.View.AsContiguous() : yv;
        var sv = s.View.AsContiguous();
        if (typeof(T) == typeof(DeviceHalf))
            Launch<DeviceHalf, F16Word, F16Mma, F16>(device, path, xv.Cast<DeviceHalf>(), vv.Cast<DeviceHalf>(), sv, uv.Cast<DeviceHalf>(),
                bv.Cast<DeviceHalf>(), hasBias, yv.Cast<DeviceHalf>(), (int)m, (int)n, (int)k, (int)r);
        else
            Launch<BFloat16, BF16Word, BF16Mma, BF16>(device, path, xv.Cast<BFloat16>(), vv.Cast<BFloat16>(), sv, uv.Cast<BFloat16>(),
                bv.Cast<BFloat16>(), hasBias, yv.Cast<BFloat16>(), (int)m, (int)n, (int)k, (int)r);
        return path;
    }

    /// <summary>
    /// The streaming low-rank FFN (FlashSVD): y = (act(x·V1 + b1)·U2)·V2 (+ b2) with x M×R1 (activations already in
    /// rank space, P = X·U1), V1 R1×D, b1 D, U2 D×R2, V2 R2×H, b2 H. The M×D hidden is never materialized: each group
    /// streams it in chunks through shared memory and keeps the R2-wide rank-space result on chip (R2 ≤ 128). No
    /// workspace. f16 or bf16 operands, f32 accumulation; asynchronous on x's stream.
    /// </summary>
    /// <param name="x">M×R1.</param>
    /// <param name="v1">R1×D.</param>
    /// <param name="b1">D (required).</param>
    /// <param name="u2">D×R2, R2 ≤ 128.</param>
    /// <param name="v2">R2×H.</param>
    /// <param name="b2">H, or a default view for none.</param>
    /// <param name="activation">GELU (tanh form) or SiLU.</param>
    /// <param name="y">M×H.</param>
    public static void StreamFfn<T>(ReadOnlyDeviceTensorSpan<T> x, ReadOnlyDeviceTensorSpan<T> v1, ReadOnlyDeviceTensorSpan<T> b1,
        ReadOnlyDeviceTensorSpan<T> u2, ReadOnlyDeviceTensorSpan<T> v2, ReadOnlyDeviceTensorSpan<T> b2, FfnActivation activation,
        DeviceTensorSpan<T> y)
        where T : unmanaged
    {
        if (typeof(T) != typeof(DeviceHalf) && typeof(T) != typeof(BFloat16))
            throw new NotSupportedException($"StreamFfn takes f16 (ILGPU.Half) or bf16 (BFloat16) operands, not {typeof(T).Name}.");
        var device = x.Device ?? throw new ArgumentException("x is a default (empty) view.", nameof(x));
        Check(device, x, nameof(x));
        Check(device, v1, nameof(v1));
        Check(device, u2, nameof(u2));
        Check(device, v2, nameof(v2));
        Check(device, y.AsReadOnly(), nameof(y));
        if (activation is not (FfnActivation.Gelu or FfnActivation.Silu))
            throw new ArgumentOutOfRangeException(nameof(activation), $"Unknown activation {activation}.");
        long m = x.Lengths[0], r1 = x.Lengths[1], d = v1.Lengths[1], r2 = u2.Lengths[1], h = v2.Lengths[1];
        LowRankChecks.Shape2(v1.Lengths, r1, d, nameof(v1));
        LowRankChecks.Shape2(u2.Lengths, d, r2, nameof(u2));
        LowRankChecks.Shape2(v2.Lengths, r2, h, nameof(v2));
        LowRankChecks.Shape2(y.Lengths, m, h, nameof(y));
        if (r1 < 1 || d < 1 || r2 < 1)
            throw new ArgumentOutOfRangeException(nameof(u2), $"ranks and hidden size must be at least 1 (R1 = {r1}, D = {d}, R2 = {r2}).");
        if (r2 > StreamFfnKernel.MaxRank)
            throw new ArgumentOutOfRangeException(nameof(u2), $"R2 = {r2} exceeds the on-chip limit {StreamFfnKernel.MaxRank} of StreamFfn.");
        Require.SameDevice(device, b1.Device, nameof(b1));
        Require.Dense(b1, nameof(b1));
        Require.Length(b1.FlattenedLength, d, nameof(b1), $"D = {d}");
        bool hasBias2 = !b2.IsEmptyView;
        if (hasBias2)
        {
            Require.SameDevice(device, b2.Device, nameof(b2));
            Require.Dense(b2, nameof(b2));
            Require.Length(b2.FlattenedLength, h, nameof(b2), $"H = {h}");
            Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(b2, nameof(b2)));
        }
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(x, nameof(x)));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(v1, nameof(v1)));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(b1, nameof(b1)));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(u2, nameof(u2)));
        Require.Disjoint(Footprint.Of(y, nameof(y)), Footprint.Of(v2, nameof(v2)));
        if (m * Math.Max(Math.Max(r1, h), d) >= int.MaxValue || d * Math.Max(r1, r2) >= int.MaxValue || r2 * h >= int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(x), "StreamFfn supports up to 2^31 elements per operand.");
        if (m == 0 || h == 0) return;

        var yv = y.View.AsContiguous();
        var b2v = hasBias2 ? b2.View.AsContiguous() : yv;
        int tx = Math.Clamp(((int)r2 + 7) / 8, 4, 16);
        int ty = device.IsCuda ? 4 : Math.Clamp(Math.Min(device.Accelerator.MaxNumThreadsPerGroup, device.Accelerator.WarpSize * 2) / tx, 1, 4);
        var p = new FfnParams
        {
            M = (int)m, R1 = (int)r1, D = (int)d, R2 = (int)r2, H = (int)h, Tx = tx, Ty = ty, HasBias2 = hasBias2 ? 1 : 0,
            VecX = r1 % 8 == 0 && Aligned(x.View.AsContiguous(), 16) ? 1 : 0,
            VecV1 = d % 8 == 0 && Aligned(v1.View.AsContiguous(), 16) ? 1 : 0,
            VecU2 = r2 % 8 == 0 && Aligned(u2.View.AsContiguous(), 16) ? 1 : 0,
            VecV2 = h % 8 == 0 && Aligned(v2.View.AsContiguous(), 16) ? 1 : 0,
            VecY = h % 4 == 0 && Aligned(yv, 8) ? 1 : 0,
        };
        int blocks = (int)((m + 8 * ty - 1) / (8 * ty));
        var config = new KernelConfig(device.IsCuda ? blocks : Math.Min(blocks, 4), tx * ty);
        var (xv, v1v, b1v, u2v, v2v) = (x.View.AsContiguous(), v1.View.AsContiguous(), b1.View.AsContiguous(), u2.View.AsContiguous(), v2.View.AsContiguous());
        if (typeof(T) == typeof(DeviceHalf))
        {
            if (activation == FfnActivation.Gelu)
                Ffn<DeviceHalf, F16Word, GeluTanh>(device)(device.Stream, config, xv.Cast<DeviceHalf>(), v1v.Cast<DeviceHalf>(), b1v.Cast<DeviceHalf>(), u2v.Cast<DeviceHalf>(), v2v.Cast<DeviceHalf>(), b2v.Cast<DeviceHalf>(), yv.Cast<DeviceHalf>(), p);
            else
                Ffn<DeviceHalf, F16Word, Silu>(device)(device.Stream, config, xv.Cast<DeviceHalf>(), v1v.Cast<DeviceHalf>(), b1v.Cast<DeviceHalf>(), u2v.Cast<DeviceHalf>(), v2v.Cast<DeviceHalf>(), b2v.Cast<DeviceHalf>(), yv.Cast<DeviceHalf>(), p);
        }
        else
        {
            if (activation == FfnActivation.Gelu)
                Ffn<BFloat16, BF16Word, GeluTanh>(device)(device.Stream, config, xv.Cast<BFloat16>(), v1v.Cast<BFloat16>(), b1v.Cast<BFloat16>(), u2v.Cast<BFloat16>(), v2v.Cast<BFloat16>(), b2v.Cast<BFloat16>(), yv.Cast<BFloat16>(), p);
            else
                Ffn<BFloat16, BF16Word, Silu>(device)(device.Stream, config, xv.Cast<BFloat16>(), v1v.Cast<BFloat16>(), b1v.Cast<BFloat16>(), u2v.Cast<BFloat16>(), v2v.Cast<BFloat16>(), b2v.Cast<BFloat16>(), yv.Cast<BFloat16>(), p);
        }
    }

    private static Action<AcceleratorStream, KernelConfig, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, FfnParams>
        Ffn<TE, TWord, TAct>(ComputeDevice device)
        where TE : unmanaged
        where TWord : struct, IHalfWord<TE>
        where TAct : struct, IActivation =>
        device.GetKernel((typeof(StreamFfnKernel), typeof(TE), typeof(TAct)), acc =>
            acc.LoadCatalogKernel<ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, ArrayView<TE>, FfnParams>(
                StreamFfnKernel.Kernel<TE, TWord, TAct>));

    private static void Check<T>(ComputeDevice device, ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged
    {
        LowRankChecks.Matrix(span, device, name);
        Require.Dense(span, name);
    }

    private static void Launch<T, TWord, TMma, TConv>(ComputeDevice device, StreamMatmulPath path, ArrayView<T> xv,
        ArrayView<T> vv, ArrayView<float> sv, ArrayView<T> uv, ArrayView<T> bv, bool hasBias, ArrayView<T> yv,
        int m, int n, int k, int r)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
        where TMma : struct, IMmaKind
        where TConv : struct, IElementConverter<T>
    {
        if (path == StreamMatmulPath.OnePass)
        {
            using var none = LowRankWorkspace.Rent(device, 0, "StreamMatmul one-pass");
            int rPad = (r + 15) / 16 * 16;
            var p = new StreamParams
            {
                M = m, N = n, K = k, R = r, RPad = rPad,
                Stage1 = GemmProblem.Create<LargeTile>(rPad, StreamMatmulKernel.BlockRows, k),
                Stage2 = GemmProblem.Create<LargeTile>(n, m, r),
            };
            int blocks = (m + StreamMatmulKernel.BlockRows - 1) / StreamMatmulKernel.BlockRows;
            // One group on the CPU accelerator (its groups run one after another anyway): covers the grid-stride loop.
            int groups = device.IsCuda ? blocks : 1;
            int words = (StreamMatmulKernel.SharedBytes + WarpScratch.BytesFor(device.IsCuda, TileEngineConstants.Warps)) / 4;
            var kernel = device.GetKernel((typeof(StreamMatmulKernel), typeof(T)), acc =>
                acc.LoadCatalogKernel<Matrix16, FactorTransposeProducer, ArrayView<float>, Matrix16, StoreEpilogue<T, TConv>, StreamParams>(
                    StreamMatmulKernel.Kernel<T, TWord, TMma, TConv>));
            kernel(device.Stream, new KernelConfig(groups, TileEngineConstants.Threads, SharedMemoryConfig.RequestDynamic<uint>(words)),
                Matrix16.FromView(xv, m, k), new FactorTransposeProducer(vv.Cast<ushort>(), k, r), sv,
                Matrix16.FromView(uv, n, r), new StoreEpilogue<T, TConv>(yv, hasBias ? bv : null, n), p);
            return;
        }

        // Two-stage on the tile engine: T = (x·V)⊙s (engine weights Vᵀ via a transposing producer), then y = T·Uᵀ + bias.
        long halves = (long)m * r;
        using var lease = LowRankWorkspace.Rent(device, (halves + 1) / 2, "StreamMatmul two-stage intermediate M×r");
        var t = lease.View.Cast<T>().SubView(0, halves);
        var stage1 = GemmProblem.Create<WideTile>(r, m, k);
        TileEngine.Launch<WideTile, TMma, FactorTransposeProducer, ScaledRankEpilogue<T, TWord, RankMajorRows>>(device,
            new FactorTransposeProducer(vv.Cast<ushort>(), k, r), Matrix16.FromView(xv, m, k),
            new ScaledRankEpilogue<T, TWord, RankMajorRows>(t, sv, r), stage1);
        var stage2 = GemmProblem.Create<WideTile>(n, m, r);
        TileEngine.Launch<WideTile, TMma, DenseWeightProducer, StoreEpilogue<T, TConv>>(device,
            new DenseWeightProducer(Matrix16.FromView(uv, n, r)), Matrix16.FromView(t, m, r),
            new StoreEpilogue<T, TConv>(yv, hasBias ? bv : null, n), stage2);
    }

    private static bool Aligned<T>(ArrayView<T> view, int bytes) where T : unmanaged =>
        view.Length == 0 || view.LoadEffectiveAddressAsPtr().ToInt64() % bytes == 0;
}
