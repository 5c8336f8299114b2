using Kernels.Tensors;
using Xunit;

namespace Kernels.Tests.Harness;

/// <summary>Fills destinations with NaN (or a byte pattern) before a run, and checks afterwards that every element was written.</summary>
public static class Poison
{
    /// <summary>Fills a float-like tensor with NaN.</summary>
    public static void Fill<T>(DeviceTensor<T> tensor) where T : unmanaged
    {
        var nan = ElementTypes.FromFloat<T>(float.NaN);
        var host = new T[tensor.FlattenedLength];
        Array.Fill(host, nan);
        tensor.CopyFrom(host);
    }

    /// <summary>Fills any tensor with a given value (for integer destinations such as codes).</summary>
    public static void Fill<T>(DeviceTensor<T> tensor, T value) where T : unmanaged
    {
        var host = new T[tensor.FlattenedLength];
        Array.Fill(host, value);
        tensor.CopyFrom(host);
    }

    /// <summary>Asserts no element of a float-like result is NaN, i.e. the kernel wrote everything it owns.</summary>
    public static void AssertAllWritten<T>(ReadOnlySpan<T> values, string what, Seeded? seed = null) where T : unmanaged
    {
        for (int i = 0; i < values.Length; i++)
            if (float.IsNaN(ElementTypes.ToFloat(values[i])))
                Assert.Fail($"{what}: element {i} was not written (still NaN) {seed?.Tag}");
    }

    /// <summary>Asserts a tensor still holds exactly the given host contents (used after an operation that must throw).</summary>
    public static void AssertUnchanged<T>(DeviceTensor<T> tensor, ReadOnlySpan<T> before, string what) where T : unmanaged
    {
        // Bitwise, so a NaN poison (which never equals itself) still counts as unchanged.
        var now = System.Runtime.InteropServices.MemoryMarshal.AsBytes(tensor.ToArray().AsSpan());
        var then = System.Runtime.InteropServices.MemoryMarshal.AsBytes(before);
        Compare.Exact<byte>(now, then, what + " (must be untouched after a rejected call; byte offsets)");
    }
}
