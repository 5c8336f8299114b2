using Kernels.Optimizers;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Optimizers;

/// <summary>Bad input to a step throws before anything is launched: parameters and states are untouched.</summary>
public class ValidationTests
{
    [Fact]
    public void BadInputThrowsAndWritesNothing()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int n = 4200;
        var p0 = seed.Normal(n, 0.1f);
        using var p = device.Upload<float>(p0, n);
        using var g = device.Upload<float>(seed.Normal(n, 0.01f), n);
        using var gShort = device.Upload<float>(new float[n - 1], n - 1);
        using var gHalf = device.Upload<DeviceHalf>(new DeviceHalf[n], n);
        using var pLong = device.Upload<float>(new float[n + 1], n + 1);
        using var grid = device.Upload<float>(new float[2 * n], 2, n);
        using var counter2 = device.Upload<int>(new int[2], 2);
        using var state = Optimizer8BitState.Create(device, OptimizerKind.AdamW, n);
        var settings = OptimizerProblem.Settings(OptimizerKind.AdamW, 0.01f);
        Optimizer8Bit.Step<float, float>(g, state, settings, 1, p); // a non-trivial state to protect
        var pBefore = p.ToArray();
        var sBefore = state.Export();
        var other = Devices.CpuWarp32;
        using var gOther = other.Upload<float>(new float[n], n);

        void Untouched()
        {
            Poison.AssertUnchanged(p, pBefore, "parameters");
            KernelVsReferenceTests.AssertStatesEqual(state.Export(), sBefore, seed);
        }

        Assert.Throws<ArgumentException>(() => Optimizer8Bit.Step<float, float>(gShort, state, settings, 2, p));
        Untouched();
        Assert.Throws<ArgumentException>(() => Optimizer8Bit.Step<float, float>(pLong, state, settings, 2, pLong.Span));
        Untouched();
        Assert.Throws<ArgumentException>(() => Optimizer8Bit.Step<float, DeviceHalf>(gHalf, state, settings, 2, p));
        Untouched();
        Assert.Throws<ArgumentNullException>(() => Optimizer8Bit.Step<float, float>(g, null!, settings, 2, p));
        Untouched();
        Assert.Throws<ArgumentException>(() => Optimizer8Bit.Step<float, float>(gOther, state, settings, 2, p));
        Untouched();
        Assert.Throws<ArgumentException>(() =>
            Optimizer8Bit.Step<float, float>(grid.ReadOnlySpan.Slice(.., 0..(n / 2)), state, settings, 2, p)); // strided
        Untouched();
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8Bit.Step<float, float>(g, state, settings, 0, p));
        Untouched();
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8Bit.Step<float, float>(g, state, settings with { LearningRate = float.NaN }, 2, p));
        Untouched();
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8Bit.Step<float, float>(g, state, settings with { Beta2 = 1.5f }, 2, p));
        Untouched();
        Assert.Throws<ArgumentOutOfRangeException>(() => Optimizer8Bit.Step<float, float>(g, state, settings with { WeightDecay = -1f }, 2, p));
        Untouched();
        Assert.Throws<ArgumentException>(() => Optimizer8Bit.Step<float, float>(g, state, settings, 2, p,
            new OptimizerStepOptions { SkippedCount = counter2.Span }));
        Untouched();
        Assert.Throws<NotSupportedException>(() => Optimizer8Bit.Step<int, int>(default, state, settings, 2, default));
        Untouched();
        Assert.Throws<ArgumentException>(() => Optimizer8Bit.Step<float, float>(default, state, settings, 2, p));
        Untouched();

        state.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Optimizer8Bit.Step<float, float>(g, state, settings, 2, p));
        Poison.AssertUnchanged(p, pBefore, "parameters");
    }
}
