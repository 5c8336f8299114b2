using Kernels.Optimizers;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Optimizers;

/// <summary>The state type: f32 below the threshold, export/import round trips, validation of snapshots.</summary>
public class StateTests
{
    [Theory]
    [InlineData(OptimizerKind.AdamW, 4096 + 333, true)]
    [InlineData(OptimizerKind.Lion, 4096, true)]
    [InlineData(OptimizerKind.Adagrad, 4095, false)]
    [InlineData(OptimizerKind.Adam, 1, false)]
    public void ExportImportRoundTripIsExactAndResumesIdentically(OptimizerKind kind, int n, bool quantized)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var settings = OptimizerProblem.Settings(kind, 0.01f);
        using var p = device.Upload<float>(seed.Normal(n, 0.1f), n);
        using var g = device.Upload<float>(seed.Normal(n, 0.01f), n);
        using var state = Optimizer8BitState.Create(device, kind, n);
        Assert.Equal(quantized, state.IsQuantized);
        Assert.Equal(kind.StateCount() * (quantized ? n + 4 * ((n + 255) / 256) : 4L * n), state.ByteLength);
        Optimizer8Bit.Step<float, float>(g, state, settings, 1, p);
        Optimizer8Bit.Step<float, float>(g, state, settings, 2, p);

        var exported = state.Export();
        using var copy = Optimizer8BitState.Import(device, exported);
        var again = copy.Export();
        KernelVsReferenceTests.AssertStatesEqual(again, exported, seed);
        Assert.Equal(exported.BlockSize, again.BlockSize);

        // Both continue identically.
        var p0 = p.ToArray();
        using var q = device.Upload<float>(p0, n);
        Optimizer8Bit.Step<float, float>(g, state, settings, 3, p);
        Optimizer8Bit.Step<float, float>(g, copy, settings, 3, q);
        Compare.Exact<float>(q.ToArray(), p.ToArray(), "parameters after resuming", seed);
        KernelVsReferenceTests.AssertStatesEqual(copy.Export(), state.Export(), seed);
    }

    [Fact]
    public void ThresholdAndBlockSizeAreChosenAtCreation()
    {
        var device = Devices.CpuSmall;
        using var small = Optimizer8BitState.Create(device, OptimizerKind.Adam, 100, 64, minQuantizedLength: 50);
        Assert.True(small.IsQuantized);
        Assert.Equal(2, small.BlockCount);
        Assert.Equal(100, small.Codes(1).FlattenedLength);
        Assert.Throws<InvalidOperationException>(() => small.Values(0));
        using var f32 = Optimizer8BitState.Create(device, OptimizerKind.RMSprop, 100);
        Assert.False(f32.IsQuantized);
        Assert.Throws<InvalidOperationException>(() => f32.Codes(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => f32.Values(1));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(30)]
    [InlineData(33)]
    [InlineData(8192)]
    public void UnsupportedBlockSizesAreRejected(int blockSize)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8BitState.Create(Devices.CpuSmall, OptimizerKind.Adam, 5000, blockSize));
        Assert.False(Optimizer8BitState.IsSupportedBlockSize(blockSize));
    }

    [Fact]
    public void CorruptSnapshotsAreRejected()
    {
        const int n = 600, b = 256; // 3 blocks
        byte[] C() => new byte[n];
        float[] A() => new float[3];
        var k = OptimizerKind.Adam;
        // Valid for reference.
        _ = new Optimizer8BitStateSnapshot(k, n, b, [C(), C()], [A(), A()], null);
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C()], [A()], null));            // missing state
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C(), null!], [A(), A()], null)); // missing array
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C(), new byte[n - 1]], [A(), A()], null));
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C(), C()], [A(), new float[2]], null));
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C(), C()], null, null));         // no absmax
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, null, null, null));               // nothing
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C(), C()], [A(), A()], [new float[n], new float[n]]));
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C(), C()], [A(), [1f, float.NaN, 0f]], null));
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, [C(), C()], [A(), [1f, -2f, 0f]], null));
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(k, n, b, null, null, [new float[n], [.. new float[n - 1], float.PositiveInfinity]]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Optimizer8BitStateSnapshot(k, n, 100 + 1, [C(), C()], [A(), A()], null));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Optimizer8BitStateSnapshot(k, 0, b, [C(), C()], [A(), A()], null));
        Assert.Throws<ArgumentException>(() => new Optimizer8BitStateSnapshot(OptimizerKind.Lion, n, b, [C(), C()], [A(), A()], null));
    }
}
