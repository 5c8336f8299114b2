using Kernels.Quantization;
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

    private static TourCase QuantizeCase<T>(CodeBook map, int b, long n) where T : unmanaged =>
        TourCase.Of($"quantize {Name(map)} B={b}", n.ToString(), ElementTypes.Name<T>(), 0, Bytes<T>(map, b, n), d =>
        {
            var host = ElementTypes.FromFloat<T>(Weights(n));
            var x = d.Upload<T>(host);
            var (codes, absmax) = (d.Allocate<byte>((nint)Blockwise.CodeBytes(n, map)), d.Allocate<float>((nint)Blockwise.BlockCount(n, b)));
            return d.Run(() => Blockwise.Quantize<T>(x, map, b, codes, absmax), () =>
            {
                var (refCodes, refAbsmax) = BlockwiseReference.Quantize<T>(host, map, b);
                return codes.ToArray().AsSpan().SequenceEqual(refCodes) && absmax.ToArray().AsSpan().SequenceEqual(refAbsmax)
                    ? 0 : double.PositiveInfinity;
            }, 0, ("bits/elem", (8.0 * (Blockwise.CodeBytes(n, map) + 4.0 * Blockwise.BlockCount(n, b)) / n).ToString("F3")));
        });

    private static TourCase DequantizeCase<T>(CodeBook map, int b, long n) where T : unmanaged =>
        TourCase.Of($"dequantize {Name(map)} B={b}", n.ToString(), ElementTypes.Name<T>(), n /* one multiply per element */,
            Bytes<T>(map, b, n), d =>
        {
            var weights = Weights(n);
            var (hostCodes, hostAbsmax) = BlockwiseReference.Quantize<float>(weights, map, b);
            var (codes, absmax, y) = (d.Upload<byte>(hostCodes), d.Upload<float>(hostAbsmax), d.Allocate<T>((nint)n));
            double err = 0, norm = 0;
            var back = BlockwiseReference.Dequantize(hostCodes, hostAbsmax, map, b, (int)n);
            for (long i = 0; i < n; i++) { err += Math.Abs(back[i] - weights[i]); norm += Math.Abs(weights[i]); }
            return d.Run(() => Blockwise.Dequantize<T>(codes, absmax, map, b, y), () =>
            {
                var expected = new T[n];
                BlockwiseReference.Dequantize<T>(hostCodes, hostAbsmax, map, b, expected);
                var (e, g) = (new float[n], new float[n]);
                ElementTypes.ToFloat<T>(expected, e);
                ElementTypes.ToFloat<T>(y.ToArray(), g);
                return TourData.RelativeError(g, e);
            }, typeof(T) == typeof(float) ? 1e-5 : 2e-3, ("roundtrip rel L1", (err / norm).ToString("E2")));
        });
}
