using ILGPU.Runtime;
using Kernels.Quantization;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Quantization;

/// <summary>Runs alone: disposing a cached code-book copy must not race another test's operation that holds it.</summary>
[CollectionDefinition(nameof(DeviceCodeBookDisposeTests), DisableParallelization = true)]
public sealed class DeviceCodeBookDisposeCollection;

/// <summary>DeviceCodeBook owns device memory: it is IDisposable, and a disposed cached copy is replaced, not reused.</summary>
[Collection(nameof(DeviceCodeBookDisposeTests))]
public class DeviceCodeBookDisposeTests
{
    [Fact]
    public void DisposeFreesTheTablesAndTheCacheUploadsAFreshCopy()
    {
        var book = CodeBook.LinearUnsigned;
        var device = Devices.CpuSmall;
        var first = book.Upload(device);
        Assert.IsAssignableFrom<IDisposable>(first);
        Assert.False(first.IsDisposed);
        Assert.Same(device, first.Device);
        first.Dispose();
        Assert.True(first.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => first.Values);
        first.Dispose(); // idempotent

        var second = book.Upload(device);
        Assert.NotSame(first, second);
        Assert.False(second.IsDisposed);
        var values = new float[256];
        second.Values.CopyToCPU(device.Stream, values);
        device.Synchronize();
        Assert.Equal(book.Values.ToArray(), values);
        Assert.Same(second, book.Upload(device));
    }

    [Fact]
    public void QuantizationStillWorksAfterItsCodeBookCopyWasDisposed()
    {
        // An operation that uploads the book after a dispose gets a live copy (the cache dropped the disposed one).
        var book = CodeBook.LinearUnsigned;
        var device = Devices.CpuSmall;
        book.Upload(device).Dispose();
        var x = Enumerable.Range(0, 70).Select(i => i / 70f).ToArray();
        using var input = device.Upload<float>(x);
        using var q = BlockwiseQuantized.Quantize(input, book, 64);
        var (codes, absmax) = BlockwiseReference.Quantize<float>(x, book, 64);
        Assert.Equal(codes, q.Codes.ToArray());
        Assert.Equal(absmax, q.Absmax!.ToArray());
    }
}
