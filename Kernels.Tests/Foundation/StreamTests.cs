using Kernels.Dense;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tests.Dense;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Foundation;

/// <summary>Streams as a framework uses them: an ambient current stream per device, events that order two streams.</summary>
public class StreamTests
{
    [Fact]
    public void UseMakesAStreamCurrentAndScopesNestAndRestore()
    {
        var device = Devices.CpuSmall;
        Assert.Same(device.DefaultStream, device.CurrentStream);
        using var a = device.CreateStream();
        using var b = device.CreateStream();
        Assert.NotSame(a, b);
        Assert.False(a.IsDefault);
        using (a.Use())
        {
            Assert.Same(a, device.CurrentStream);
            Assert.Same(device.CurrentStream.Native, device.Stream);
            using (device.Use(b)) Assert.Same(b, device.CurrentStream);
            Assert.Same(a, device.CurrentStream);
            Assert.Same(ComputeDevice.CpuWarp32.DefaultStream, ComputeDevice.CpuWarp32.CurrentStream); // per device
        }
        Assert.Same(device.DefaultStream, device.CurrentStream);
    }

    [Fact]
    public async Task TheCurrentStreamFlowsIntoTasksButNotIntoOtherThreads()
    {
        var device = Devices.CpuSmall;
        using var s = device.CreateStream();
        using (s.Use())
        {
            Assert.Same(s, await Task.Run(() => device.CurrentStream));
            DeviceStream? seen = null;
            var thread = new Thread(() => seen = device.CurrentStream);
            thread.UnsafeStart(); // no execution context: a thread of its own
            thread.Join();
            Assert.Same(device.DefaultStream, seen);
        }
    }

    [Fact]
    public void ScopesDisposedOutOfOrderAreRefused()
    {
        var device = Devices.CpuSmall;
        using var a = device.CreateStream();
        using var b = device.CreateStream();
        var outer = a.Use();
        var inner = b.Use();
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        outer.Dispose();
        Assert.Same(device.DefaultStream, device.CurrentStream);
    }

    [Fact]
    public void StreamsAndEventsOfAnotherDeviceAreRefused()
    {
        using var s = Devices.CpuSmall.CreateStream();
        using var other = Devices.CpuWarp32.CreateStream();
        var e = Assert.Throws<ArgumentException>(() => Devices.CpuWarp32.Use(s));
        Assert.Equal("stream", e.ParamName);
        using var done = other.Record();
        Assert.Equal("event", Assert.Throws<ArgumentException>(() => s.Wait(done)).ParamName);
    }

    [Fact]
    public void DisposedStreamsAndEventsAreRefused()
    {
        var device = Devices.CpuSmall;
        var s = device.CreateStream();
        var e = s.Record();
        e.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.Wait(e));
        Assert.Throws<ObjectDisposedException>(() => e.IsCompleted);
        var scope = s.Use();
        s.Dispose();
        Assert.True(s.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => device.CurrentStream);
        scope.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.Use());
        Assert.Throws<ObjectDisposedException>(() => s.Record());
        device.DefaultStream.Dispose(); // ignored
        Assert.False(device.DefaultStream.IsDisposed);
    }

    [Fact]
    public void OnlyACudaDeviceWrapsAnExternalStream() =>
        Assert.Throws<InvalidOperationException>(() => Devices.CpuSmall.WrapStream(new IntPtr(1)));

    [Fact]
    public void OperationsUnderAScopeRunOnItsStreamAndMatchTheReference()
    {
        // On the CPU accelerator launches complete in order; this checks the plumbing end to end.
        var device = Devices.CpuWarp32;
        var seed = Seeded.Create();
        const int n = 3, k = 70, m = 20;
        var (xh, wh, _) = GemmTests.Inputs<DeviceHalf>(seed, n, k, m);
        using var s = device.CreateStream();
        using var x = device.Upload<DeviceHalf>(xh, n, k);
        using var w = device.Upload<DeviceHalf>(wh, m, k);
        using var y = device.Allocate<DeviceHalf>(n, m);
        Poison.Fill(y);
        DeviceEvent done;
        using (s.Use())
        {
            Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, null, y, new Kernels.Dense.Dense.GemmTuning(Splits: 2));
            done = s.Record();
        }
        using (done)
        {
            device.DefaultStream.Wait(done);
            done.Synchronize();
            Assert.True(done.IsCompleted);
        }
        var expected = DenseReference.GemmExact<DeviceHalf>(xh, wh, ReadOnlySpan<DeviceHalf>.Empty, n, k, m);
        Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), expected, Compare.F16, "GEMM on a created stream", seed);
    }

    [Fact]
    public void GpuEventsOrderAProducerStreamBeforeAConsumerStream()
    {
        var device = Devices.RequireCuda();
        var seed = Seeded.Create();
        const int n = 1 << 22, blockSize = 256;
        var map = CodeBook.DynamicSigned;
        var host = seed.Normal(n);
        var (refCodes, refAbsmax) = BlockwiseReference.Quantize<float>(host, map, blockSize);
        var expected = new float[n];
        BlockwiseReference.Dequantize<float>(refCodes, refAbsmax, map, blockSize, expected);
        using var producer = device.CreateStream();
        using var consumer = device.CreateStream();
        using var x = device.Upload<float>(host);
        using var codes = device.Allocate<byte>((nint)Blockwise.CodeBytes(n, map));
        using var absmax = device.Allocate<float>((nint)Blockwise.BlockCount(n, blockSize));
        using var y = device.Allocate<float>(n);
        Poison.Fill(codes, (byte)0xA5);
        Poison.Fill(y);
        device.Synchronize();
        using (producer.Use()) Blockwise.Quantize<float>(x, map, blockSize, codes, absmax);
        using var quantized = producer.Record();
        consumer.Wait(quantized);
        using (consumer.Use())
        {
            Blockwise.Dequantize<float>(codes, absmax, map, blockSize, y);
            Compare.Exact<float>(y.ToArray(), expected, "dequantized on the consumer stream", seed);
        }
        Assert.True(quantized.IsCompleted);
    }

    [Fact]
    public void GpuSplitKScratchIsSafeAcrossStreams()
    {
        // Two threads, each on its own stream, share the device's split-K workspace: the lease orders them.
        var device = Devices.RequireCuda();
        var seed = Seeded.Create();
        const int n = 4, k = 4096, m = 2048;
        var cases = Enumerable.Range(0, 2).Select(_ => GemmTests.Inputs<DeviceHalf>(seed, n, k, m)).ToArray();
        Concurrently.Run(2, rounds: 4, (t, round) =>
        {
            var (xh, wh, _) = cases[t];
            using var s = device.CreateStream();
            using var scope = s.Use();
            using var x = device.Upload<DeviceHalf>(xh, n, k);
            using var w = device.Upload<DeviceHalf>(wh, m, k);
            using var y = device.Allocate<DeviceHalf>(n, m);
            Kernels.Dense.Dense.Gemm<DeviceHalf>(x, w, null, y, new Kernels.Dense.Dense.GemmTuning(Splits: 8));
            var expected = DenseReference.GemmExact<DeviceHalf>(xh, wh, ReadOnlySpan<DeviceHalf>.Empty, n, k, m);
            Compare.Close(Compare.ToFloat<DeviceHalf>(y.ToArray()), expected, Compare.F16, $"stream {t} round {round}", seed);
        });
    }

    [Fact]
    public void ReadmeStreamSnippetRunsAndMatchesTheReference()
    {
        // The stream lines of README.md "Devices", verbatim apart from the device and the data.
        var seed = Seeded.Create();
        ComputeDevice device = Devices.CpuSmall;
        float[] weights = seed.Normal(640);
        using var x = device.Upload<float>(weights, 640);
        using var codes = device.Allocate<byte>((nint)Blockwise.CodeBytes(640, CodeBook.NF4));
        using var absmax = device.Allocate<float>((nint)Blockwise.BlockCount(640, 64));
        using var side = device.CreateStream();                 // or device.WrapStream(cudaStreamPtr) for a framework's stream
        using (side.Use()) Blockwise.Quantize(x, CodeBook.NF4, 64, codes, absmax);   // enqueued on `side`
        using var quantized = side.Record();                    // an event after the quantize
        device.DefaultStream.Wait(quantized);                   // the default stream waits on the device; the host does not
        var expected = BlockwiseReference.Quantize<float>(weights, CodeBook.NF4, 64);
        Compare.Exact<byte>(codes.ToArray(), expected.Codes, "README stream sample codes", seed);
        Compare.Exact<float>(absmax.ToArray(), expected.Absmax, "README stream sample absmax", seed);
    }
}
