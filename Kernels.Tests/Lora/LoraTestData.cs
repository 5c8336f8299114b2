using Kernels.Lora;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;

namespace Kernels.Tests.Lora;

/// <summary>Random LoRA operands, rounded to the element type once so device and reference see the same values.</summary>
internal sealed class LoraOperand<T> : IDisposable where T : unmanaged
{
    public LoraOperand(ComputeDevice device, float[] values, params nint[] lengths)
    {
        Typed = ElementTypes.FromFloat<T>(values);
        Host = Compare.ToFloat<T>(Typed);
        Device = device.Upload<T>(Typed, lengths);
    }

    /// <summary>The values as stored (T).</summary>
    public T[] Typed { get; }

    /// <summary>The same values widened to f32 (exact).</summary>
    public float[] Host { get; }

    public DeviceTensor<T> Device { get; }

    public static LoraOperand<T> Random(ComputeDevice device, Seeded seed, float std, params nint[] lengths) =>
        new(device, seed.Normal(lengths.Aggregate(1L, (a, b) => a * b), std), lengths);

    public void Dispose() => Device.Dispose();
}

internal static class LoraTestData
{
    /// <summary>A NaN-poisoned f32 destination.</summary>
    public static DeviceTensor<float> Poisoned(ComputeDevice device, params nint[] lengths) => PoisonedOf<float>(device, lengths);

    public static DeviceTensor<T> PoisonedOf<T>(ComputeDevice device, params nint[] lengths) where T : unmanaged
    {
        var t = device.Allocate<T>(lengths);
        Poison.Fill(t);
        return t;
    }

    /// <summary>Bit-exact "untouched" check (NaN ≠ NaN under ILGPU.Half's equality, so compare bytes).</summary>
    public static void AssertBitsUnchanged<T>(DeviceTensor<T> tensor, T[] before, string what) where T : unmanaged
    {
        var now = System.Runtime.InteropServices.MemoryMarshal.AsBytes(tensor.ToArray().AsSpan()).ToArray();
        var then = System.Runtime.InteropServices.MemoryMarshal.AsBytes(before.AsSpan()).ToArray();
        Xunit.Assert.True(now.AsSpan().SequenceEqual(then), $"{what} must be untouched after a rejected call");
    }

    public static LoraDropout Dropout(Seeded seed, float p) =>
        p == 0 ? LoraDropout.None : new LoraDropout(p, (ulong)seed.Random.NextInt64(), (ulong)seed.Next(0, 1000));

    public static double Bound<T>() where T : unmanaged => Compare.BoundFor(ElementTypes.Of<T>());

    /// <summary>Host adapters (f32 view) and typed adapters with the same values.</summary>
    public static (List<LoraAdapter<T>> Typed, List<LoraAdapter<float>> Host) Adapters<T>(Seeded seed, int k, int n, params int[] ranks)
        where T : unmanaged
    {
        var typed = new List<LoraAdapter<T>>();
        var host = new List<LoraAdapter<float>>();
        foreach (int r in ranks)
        {
            var a = ElementTypes.FromFloat<T>(seed.Normal((long)r * k, 0.5f));
            var b = ElementTypes.FromFloat<T>(seed.Normal((long)n * r, 0.5f));
            float scale = 16f / r * (0.5f + (float)seed.Random.NextDouble());
            typed.Add(new LoraAdapter<T>(r, scale, a, b));
            host.Add(new LoraAdapter<float>(r, scale, Compare.ToFloat<T>(a), Compare.ToFloat<T>(b)));
        }
        return (typed, host);
    }
}
