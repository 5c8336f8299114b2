using Kernels.Optimizers;
using Kernels.Tensors;

namespace Kernels.Bench.Tour;

/// <summary>
/// Fused 8-bit optimizer steps at B = 256: AdamW with f32 and bf16 parameters, Lion with f32 parameters, on 2^28
/// parameters on a GPU (2^14 on the CPU accelerator). Compulsory bytes per step: read p, g, each state's codes and
/// scales; write p, codes and scales (AdamW f32: 16 + 16/B bytes per parameter). Verify runs the quantized CPU
/// reference on the first 2^20 parameters (blocks are independent, so a prefix of whole blocks is exact): the relative
/// parameter error after one step, or +∞ when more than 0.1 % of the codes or scales differ (a GPU may contract a
/// multiply-add and move a state across a code midpoint; the CPU accelerator matches exactly).
/// </summary>
public sealed class OptimizersTour : ITourSuite
{
    /// <inheritdoc />
    public string Family => "Optimizers";

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        long n = context.Full ? 1L << 28 : 1L << 14;
        yield return StepCase<float>(OptimizerKind.AdamW, n);
        yield return StepCase<BFloat16>(OptimizerKind.AdamW, n);
        yield return StepCase<float>(OptimizerKind.Lion, n);
    }

    private const int BlockSize = Optimizer8BitState.DefaultBlockSize;
    private const int VerifiedPrefix = 1 << 20;

    private static TourCase StepCase<T>(OptimizerKind kind, long n) where T : unmanaged
    {
        int size = ElementTypes.Size(ElementTypes.Of<T>());
        int states = kind.StateCount();
        double blocks = Math.Ceiling((double)n / BlockSize);
        return TourCase.Of($"{kind} 8-bit step B={BlockSize}", n.ToString(), ElementTypes.Name<T>(),
            (kind == OptimizerKind.Lion ? 9.0 : 14.0) * n, // the f32 update only; the code search is compares
            n * (3.0 * size + 2.0 * states) + 2.0 * states * 4 * blocks, d => Setup<T>(d, kind, n));
    }

    private static TourRun Setup<T>(TourBuffers d, OptimizerKind kind, long n) where T : unmanaged
    {
        var settings = OptimizerSettings.Defaults(kind, kind == OptimizerKind.Lion ? 1e-4f : 1e-3f);
        var p0 = Fill<T>(n, 0.1f, 1);
        var g0 = Fill<T>(n, 0.01f, 2);
        var p = d.Upload<T>(p0, (nint)n);
        var g = d.Upload<T>(g0, (nint)n);
        var state = d.Own(Optimizer8BitState.Create(d.Device, kind, n, BlockSize));
        int prefix = (int)Math.Min(n, VerifiedPrefix);
        var refState = Optimizer8BitState.ZeroSnapshot(kind, prefix, BlockSize, quantized: true);
        var refP = p0.AsSpan(0, prefix).ToArray();
        Optimizer8BitReference.Step<T, T>(g0.AsSpan(0, prefix), refState, settings, 1, refP);
        long step = 0;
        return d.Run(() => Optimizer8Bit.Step<T, T>(g, state, settings, ++step, p), () => Verify(state, p, refState, refP, prefix),
            1e-5, ("state bytes/param", ((double)state.ByteLength / n).ToString("F3")));
    }

    private static double Verify<T>(Optimizer8BitState state, DeviceTensor<T> p, Optimizer8BitStateSnapshot refState,
        T[] refP, int prefix) where T : unmanaged
    {
        long differing = 0;
        int blocks = refState.BlockCount;
        for (int s = 0; s < state.StateCount; s++)
        {
            var codes = state.Codes(s).Slice(0..prefix).ToArray();
            var absmax = state.Absmax(s).Slice(0..blocks).ToArray();
            for (int i = 0; i < prefix; i++) if (codes[i] != refState.Codes![s][i]) differing++;
            for (int b = 0; b < blocks; b++) if (absmax[b] != refState.Absmax![s][b]) differing++;
        }
        if (differing > 0.001 * prefix) return double.PositiveInfinity;
        var got = p.ReadOnlySpan.Slice(0..prefix).ToArray();
        double num = 0, den = 0;
        for (int i = 0; i < prefix; i++)
        {
            double e = ElementTypes.ToFloat(got[i]), r = ElementTypes.ToFloat(refP[i]);
            num += (e - r) * (e - r);
            den += r * r;
        }
        return Math.Sqrt(num / den);
    }

    /// <summary>Fast deterministic fill: scale·U(−√3, √3) (unit variance) from a SplitMix64 stream.</summary>
    private static T[] Fill<T>(long n, float scale, ulong seed) where T : unmanaged
    {
        var x = new T[n];
        ulong z = seed * 0x9E3779B97F4A7C15UL;
        for (long i = 0; i < n; i++)
        {
            z += 0x9E3779B97F4A7C15UL;
            ulong r = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            r = (r ^ (r >> 27)) * 0x94D049BB133111EBUL;
            r ^= r >> 31;
            float u = (r >> 40) * (1f / (1 << 24)) * 2f - 1f;
            x[i] = ElementTypes.FromFloat<T>(scale * 1.7320508f * u);
        }
        return x;
    }
}
