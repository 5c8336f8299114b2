using Kernels.Optimizers;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;

namespace Kernels.Tests.Optimizers;

/// <summary>
/// The 8-bit optimizers against the independent f32-state, torch-semantics reference over 100 steps of bitsandbytes'
/// test problem (docs/bitsandbytes.md §4): p ~ 0.1·N(0,1), a fresh g ~ 0.01·N(0,1) every step.
/// </summary>
public class AccuracyTests
{
    public static TheoryData<OptimizerKind> AllKinds() => new(OptimizerProblem.Kinds);

    /// <summary>
    /// bitsandbytes' protocol (tests/test_optim.py, test_optimizer8bit), run with the kernel: both optimizers start
    /// every step from the same parameters (the 8-bit run takes the reference's, rounded to the parameter type) and
    /// the same states (the reference takes the 8-bit run's dequantized states); after each step the mean absolute
    /// parameter error must be &lt; 6e-5 and the mean relative error &lt; 6e-4 (bf16: ≤ 1.7e-4 and ≤ 1.6e-3), and each
    /// state may have fewer than 20 elements outside atol 3e-3, rtol 1e-3 of the reference's. AdamW runs the kernel
    /// on the CPU accelerator; the other optimizers run the quantized CPU reference, which the kernel matches bit for
    /// bit for every optimizer (<see cref="KernelVsReferenceTests"/>), to keep the suite's CPU-accelerator time down.
    /// </summary>
    [Theory]
    [InlineData(OptimizerKind.AdamW, true)]
    [InlineData(OptimizerKind.Adam, false)]
    [InlineData(OptimizerKind.Momentum, false)]
    [InlineData(OptimizerKind.Lion, false)]
    [InlineData(OptimizerKind.RMSprop, false)]
    [InlineData(OptimizerKind.Adagrad, false)]
    public void MeetsBitsandbytesBoundsWithF32Parameters(OptimizerKind kind, bool kernel) =>
        BitsandbytesProtocol<float>(kind, kernel, 6e-5, 6e-4);

    /// <summary>The same protocol with bf16 parameters and gradients.</summary>
    [Theory]
    [InlineData(OptimizerKind.AdamW, true)]
    [InlineData(OptimizerKind.Lion, false)]
    public void MeetsBitsandbytesBoundsWithBf16Parameters(OptimizerKind kind, bool kernel) =>
        BitsandbytesProtocol<BFloat16>(kind, kernel, 1.7e-4, 1.6e-3);

    /// <summary>
    /// Free-running: 100 steps with no re-synchronization, so the states' quantization error accumulates in the
    /// parameters. The mean absolute parameter error must stay under 5 % (Lion, whose sign update flips on small
    /// momenta: 8 %) of the mean distance the reference moved the parameters (measured: about 2 %, 4 % for Lion,
    /// 0.5 % for RMSprop/Adagrad). Runs the quantized CPU reference, which the kernel matches bit for bit
    /// (<see cref="KernelVsReferenceTests"/>), to keep the CPU-accelerator time down.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllKinds))]
    public void FreeRunningErrorStaysSmallAgainstTheDistanceTravelled(OptimizerKind kind)
    {
        const int n = 8192, steps = 100;
        var seed = Seeded.Create();
        var settings = OptimizerProblem.Settings(kind);
        var p8 = seed.Normal(n, 0.1f);
        var p0 = (float[])p8.Clone();
        var pr = (float[])p8.Clone();
        var state = Optimizer8BitState.ZeroSnapshot(kind, n, Optimizer8BitState.DefaultBlockSize, quantized: true);
        var s1 = new float[n];
        var s2 = new float[n];
        for (int t = 1; t <= steps; t++)
        {
            var g = seed.Normal(n, 0.01f);
            Optimizer8BitReference.Step<float, float>(g, state, settings, t, p8);
            OptimizerF32Reference.Step(kind, settings, t, g, pr, s1, s2);
        }
        double error = 0, travelled = 0;
        for (int i = 0; i < n; i++)
        {
            error += Math.Abs(p8[i] - pr[i]);
            travelled += Math.Abs(pr[i] - p0[i]);
        }
        double bound = kind == OptimizerKind.Lion ? 0.08 : 0.05;
        Assert.True(error / travelled < bound, $"{kind}: error / distance = {error / travelled:E2} ≥ {bound} {seed.Tag}");
    }

    private static void BitsandbytesProtocol<TP>(OptimizerKind kind, bool kernel, double absBound, double relBound)
        where TP : unmanaged
    {
        const int n = 4096 + 100, steps = 100;
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var settings = OptimizerProblem.Settings(kind);
        var refP = OptimizerProblem.Widen(OptimizerProblem.Convert<TP>(seed.Normal(n, 0.1f)));
        using var p = OptimizerProblem.Upload(device, OptimizerProblem.Convert<TP>(refP));
        using var g = device.Allocate<TP>(n);
        using var state = Optimizer8BitState.Create(device, kind, n);
        Assert.True(state.IsQuantized);
        var hostState = state.Export();
        var hostP = OptimizerProblem.Convert<TP>(refP);
        var refStates = new[] { new float[n], new float[n] };
        for (int t = 1; t <= steps; t++)
        {
            var grad = OptimizerProblem.Convert<TP>(seed.Normal(n, 0.01f));
            if (kernel)
            {
                g.CopyFrom(grad);
                Optimizer8Bit.Step<TP, TP>(g, state, settings, t, p);
            }
            else Optimizer8BitReference.Step<TP, TP>(grad, hostState, settings, t, hostP);
            OptimizerF32Reference.Step(kind, settings, t, OptimizerProblem.Widen(grad), refP, refStates[0], refStates[1]);

            var snapshot = kernel ? state.Export() : hostState;
            for (int s = 0; s < kind.StateCount(); s++)
            {
                int outside = 0;
                for (int i = 0; i < n; i++)
                {
                    float q = snapshot.Dequantize(s, i);
                    if (Math.Abs(q - refStates[s][i]) > 3e-3 + 1e-3 * Math.Abs(refStates[s][i])) outside++;
                    refStates[s][i] = q; // the reference continues from the 8-bit states
                }
                Assert.True(outside < 20, $"{kind} step {t}: {outside} elements of state {s} outside atol 3e-3 / rtol 1e-3 {seed.Tag}");
            }

            var got = OptimizerProblem.Widen(kernel ? p.ToArray() : hostP);
            double abs = 0, rel = 0;
            for (int i = 0; i < n; i++)
            {
                double e = Math.Abs(got[i] - refP[i]);
                abs += e;
                rel += e / (Math.Abs(refP[i]) + 1e-9);
            }
            Assert.True(abs / n <= absBound, $"{kind} step {t}: mean abs error {abs / n:E2} > {absBound:E1} {seed.Tag}");
            Assert.True(rel / n <= relBound, $"{kind} step {t}: mean rel error {rel / n:E2} > {relBound:E1} {seed.Tag}");

            // The 8-bit run continues from the reference's parameters, rounded to the parameter type.
            var synced = OptimizerProblem.Convert<TP>(refP);
            refP = OptimizerProblem.Widen(synced);
            if (kernel) p.CopyFrom(synced);
            else hostP = synced;
        }
    }
}
