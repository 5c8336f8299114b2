using Kernels.Optimizers;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Optimizers;

/// <summary>
/// Every 8-bit optimizer (the kernel, quantized states forced on a 600-element tensor) minimizes a diagonal quadratic
/// ½·Σ aᵢ(pᵢ − cᵢ)² with aᵢ ∈ [0.5, 2], cᵢ ~ N(0,1), from p = 0: the loss must fall below 1 % of its start.
/// </summary>
public class ConvergenceTests
{
    [Theory]
    [InlineData(OptimizerKind.Adam, 0.05f)]
    [InlineData(OptimizerKind.AdamW, 0.05f)]
    [InlineData(OptimizerKind.Momentum, 0.05f)]
    [InlineData(OptimizerKind.Lion, 0.05f)]
    [InlineData(OptimizerKind.RMSprop, 0.03f)]
    [InlineData(OptimizerKind.Adagrad, 0.5f)]
    public void MinimizesAQuadratic(OptimizerKind kind, float learningRate)
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int n = 600, steps = 150;
        var a = seed.Uniform(n, 0.5f, 2f);
        var c = seed.Normal(n);
        var settings = OptimizerSettings.Defaults(kind, learningRate) with { WeightDecay = 0f };
        using var p = device.Upload<float>(new float[n], n);
        using var g = device.Allocate<float>(n);
        using var state = Optimizer8BitState.Create(device, kind, n, minQuantizedLength: 0);
        Assert.True(state.IsQuantized);
        double Loss(float[] x)
        {
            double l = 0;
            for (int i = 0; i < n; i++) l += 0.5 * a[i] * (x[i] - c[i]) * (x[i] - c[i]);
            return l;
        }
        var x = new float[n];
        double start = Loss(x);
        var grad = new float[n];
        for (int t = 1; t <= steps; t++)
        {
            for (int i = 0; i < n; i++) grad[i] = a[i] * (x[i] - c[i]);
            g.CopyFrom(grad);
            Optimizer8Bit.Step<float, float>(g, state, settings, t, p);
            x = p.ToArray();
        }
        double end = Loss(x);
        Assert.True(end < 0.01 * start, $"{kind}: loss {start:F3} → {end:F5} after {steps} steps {seed.Tag}");
    }
}
