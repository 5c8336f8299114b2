using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Bench.Tour;

/// <summary>
/// Block-wise quantization rows: 8-bit dynamic quantize/dequantize at B = 256 and 4096 and NF4 at B = 64, on 2^26
/// elements on a GPU (2^14 on the CPU accelerator). Quantize verifies codes and absmax exactly against
/// <see cref="BlockwiseReference"/> (error 0, else +∞); dequantize verifies against the reference dequantization.
/// </summary>
public sealed class QuantizationTour : ITourSuite
{
    /// <inheritdoc />
    public string Family => "Quantization";

    /// <inheritdoc />
    public IEnumerable<TourCase> Cases(TourContext context)
    {
        long n = context.Full ? 1L << 26 : 1L << 14; // the CPU accelerator only proves the kernels work
        foreach (var (map, b) in new[] { (CodeBook.DynamicSigned, 256), (CodeBook.DynamicSigned, 4096), (CodeBook.NF4, 64) })
        {
            yield return QuantizeCase<DeviceHalf>(map, b, n);
            yield return DequantizeCase<DeviceHalf>(map, b, n);
        }
        yield return QuantizeCase<float>(CodeBook.DynamicSigned, 256, n);
        yield return DequantizeCase<float>(CodeBook.DynamicSigned, 256, n);
    }

    private static string Name(CodeBook map) => map.Bits == 8 ? "8-bit dynamic" : map.Name.ToUpperInvariant();

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<long, float[]> WeightCache = new();

    // One weight vector per size, shared by every row (generating 2^26 normals per row would dominate a GPU tour).
    private static float[] Weights(long n) => WeightCache.GetOrAdd(n, MakeWeights);

    private static float[] MakeWeights(long n)
    {
        var random = new Random(1234);
        var x = new float[n];
        for (long i = 0; i < n; i++)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            x[i] = (float)(0.02 * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2.0 * Math.PI * u2)); // LLM-like weight scale
        }
        return x;
    }

    private static double Bytes<T>(CodeBook map, int b, long n) where T : unmanaged =>
        (double)n * ElementTypes.Size(ElementTypes.Of<T>()) + Blockwise.CodeBytes(n, map) + 4.0 * Blockwise.BlockCount(n, b);

    private static TourCase QuantizeCase<T>(CodeBook map, int b, long n) where T : unmanaged => new()
    {
        Op = $"quantize {Name(map)} B={b}",
        Shape = n.ToString(),
        DType = ElementTypes.Name<T>(),
        Flops = 0,
        Bytes = Bytes<T>(map, b, n),
        Setup = context =>
        {
            var device = context.Device;
            var host = ElementTypes.FromFloat<T>(Weights(n));
            var x = device.Upload<T>(host);
            var codes = device.Allocate<byte>((nint)Blockwise.CodeBytes(n, map));
            var absmax = device.Allocate<float>((nint)Blockwise.BlockCount(n, b));
            var run = new TourRun
            {
                Launch = () => Blockwise.Quantize<T>(x, map, b, codes, absmax),
                Verify = () =>
                {
                    var (refCodes, refAbsmax) = BlockwiseReference.Quantize<T>(host, map, b);
                    return codes.ToArray().AsSpan().SequenceEqual(refCodes) && absmax.ToArray().AsSpan().SequenceEqual(refAbsmax)
                        ? 0 : double.PositiveInfinity;
                },
                Bound = 0,
                Release = () => { x.Dispose(); codes.Dispose(); absmax.Dispose(); },
            };
            run.Notes["bits/elem"] = (8.0 * (Blockwise.CodeBytes(n, map) + 4.0 * Blockwise.BlockCount(n, b)) / n).ToString("F3");
            return run;
        },
    };

    private static TourCase DequantizeCase<T>(CodeBook map, int b, long n) where T : unmanaged => new()
    {
        Op = $"dequantize {Name(map)} B={b}",
        Shape = n.ToString(),
        DType = ElementTypes.Name<T>(),
        Flops = n, // one multiply per element
        Bytes = Bytes<T>(map, b, n),
        Setup = context =>
        {
            var device = context.Device;
            var weights = Weights(n);
            var (hostCodes, hostAbsmax) = BlockwiseReference.Quantize<float>(weights, map, b);
            var codes = device.Upload<byte>(hostCodes);
            var absmax = device.Upload<float>(hostAbsmax);
            var y = device.Allocate<T>((nint)n);
            var run = new TourRun
            {
                Launch = () => Blockwise.Dequantize<T>(codes, absmax, map, b, y),
                Verify = () =>
                {
                    var expected = new T[n];
                    BlockwiseReference.Dequantize<T>(hostCodes, hostAbsmax, map, b, expected);
                    var got = y.ToArray();
                    var e = new float[n];
                    ElementTypes.ToFloat<T>(expected, e);
                    var g = new float[n];
                    ElementTypes.ToFloat<T>(got, g);
                    return RelativeError(g, e);
                },
                Bound = typeof(T) == typeof(float) ? 1e-5 : 2e-3,
                Release = () => { codes.Dispose(); absmax.Dispose(); y.Dispose(); },
            };
            double err = 0, norm = 0;
            var back = BlockwiseReference.Dequantize(hostCodes, hostAbsmax, map, b, (int)n);
            for (long i = 0; i < n; i++) { err += Math.Abs(back[i] - weights[i]); norm += Math.Abs(weights[i]); }
            run.Notes["roundtrip rel L1"] = (err / norm).ToString("E2");
            return run;
        },
    };

    private static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) return double.PositiveInfinity;
            double d = actual[i] - expected[i];
            num += d * d;
            den += (double)expected[i] * expected[i];
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }
}
