using System.Runtime.InteropServices;
using Kernels.Tensors;
using Xunit;

namespace Kernels.Tests.Harness;

/// <summary>
/// Proves that a rejected call wrote nothing: <see cref="Watch{T}"/> fills a destination with an all-ones byte
/// pattern (NaN in f32, f16 and bf16; −1 in integers) and remembers it; <see cref="Rejects{TException}"/> runs the
/// call, expects the exception, and checks every watched tensor byte for byte.
/// </summary>
public sealed class WriteGuard
{
    private readonly List<(string Name, Func<byte[]> Read, byte[] Before)> watched = new();

    /// <summary>Poisons <paramref name="tensor"/> and watches it under <paramref name="name"/>; returns the tensor.</summary>
    public DeviceTensor<T> Watch<T>(DeviceTensor<T> tensor, string name) where T : unmanaged
    {
        var pattern = new byte[tensor.ByteLength];
        Array.Fill(pattern, (byte)0xFF);
        tensor.CopyFrom(MemoryMarshal.Cast<byte, T>(pattern));
        watched.Add((name, () => MemoryMarshal.AsBytes(tensor.ToArray().AsSpan()).ToArray(), pattern));
        return tensor;
    }

    /// <summary>Runs <paramref name="call"/>, which must throw <typeparamref name="TException"/> (naming <paramref name="paramName"/> when given), then checks nothing changed.</summary>
    public TException Rejects<TException>(Action call, string? paramName = null, string what = "") where TException : Exception
    {
        var ex = Assert.ThrowsAny<TException>(call);
        if (paramName is not null)
            Assert.Equal(paramName, Assert.IsAssignableFrom<ArgumentException>(ex).ParamName);
        foreach (var (name, read, before) in watched)
        {
            var now = read();
            int first = Array.FindIndex(now, b => b != 0xFF);
            Assert.True(first < 0, $"{what}: {name} was written (byte {first}) by a call that was rejected with: {ex.Message}");
            Assert.Equal(before.Length, now.Length);
        }
        return ex;
    }
}
