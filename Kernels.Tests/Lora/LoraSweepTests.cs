using ILGPU.Runtime.Cuda;
using Kernels.Lora;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>The one-pass dS/dB sweep (<see cref="LoraDsDbSweep"/>) and the byte model that chooses it.</summary>
public class LoraSweepTests
{
    [Theory]
    [InlineData(1, 40, 1)]
    [InlineData(1, 40, 64)]
    [InlineData(7, 20, 16)] // N not a multiple of 8 (f16): scalar loads
    [InlineData(7, 40, 1)] // two or three ranges of N: dS planes + ordered sum
    [InlineData(129, 40, 16)]
    [InlineData(129, 24, 64)] // three 64-row chunks: dB planes + ordered sum
    [InlineData(520, 20, 1)] // two 512-row chunks
    [InlineData(520, 16, 16)] // three 256-row chunks, one whole aligned tile
    [InlineData(520, 8, 64)]
    public void SweepMatchesReference(int m, int n, int r)
    {
        SweepCase<DeviceHalf>(m, n, r);
        SweepCase<BFloat16>(m, n, r);
        SweepCase<float>(m, n, r);
    }

    private static void SweepCase<T>(int m, int n, int r) where T : unmanaged
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        float alpha = 2f / r;
        using var dy = LoraOperand<T>.Random(device, seed, 1f, m, n);
        using var b = LoraOperand<T>.Random(device, seed, 0.5f, n, r);
        var sHost = seed.Normal((long)m * r, 1f);
        using var s = device.Upload<float>(sHost, m, r);
        using var ds = LoraTestData.Poisoned(device, m, r);
        using var db = LoraTestData.Poisoned(device, n, r);
        void Run() => Kernels.Lora.Lora.EnqueueDsDb(device, dy.Device.View.AsContiguous(), m, n, b.Device.View.AsContiguous(), s.View.AsContiguous(),
            r, alpha, ds.View.AsContiguous(), db.View.AsContiguous(), fused: true);
        Run();
        var gotDs = ds.ToArray();
        var gotDb = db.ToArray();
        Poison.AssertAllWritten<float>(gotDs, "dS", seed);
        Poison.AssertAllWritten<float>(gotDb, "dB", seed);
        var eds = new double[m * r];
        var edb = new double[n * r];
        LoraReference.BackwardDsDb(dy.Host, b.Host, sHost, m, n, r, alpha, eds, edb);
        string what = $"{ElementTypes.Name<T>()} m={m} n={n} r={r}";
        Compare.Close(gotDs, eds, Compare.F32, $"dS {what}", seed);
        Compare.Close(gotDb, edb, Compare.F32, $"dB {what}", seed);

        // Deterministic: a second run gives the same bits.
        Run();
        Compare.Exact<float>(ds.ToArray(), gotDs, $"dS rerun {what}", seed);
        Compare.Exact<float>(db.ToArray(), gotDb, $"dB rerun {what}", seed);
    }

    [Fact]
    public void ByteModelTakesTheSweepAtTheTourShape()
    {
        // The tour's GPU shape (M = 8192, N = 4096, r = 16, f16) on an H200 (132 SMs).
        var plan = LoraBackwardPlan.For(8192, 4096, 16, 2, 264);
        Assert.True(plan.Fused);
        Assert.Equal(256, plan.ChunkRows);
        Assert.Equal(32, plan.Chunks);
        // dY alone is 67.1 MB; two passes read it twice.
        Assert.InRange(plan.FusedBytes, 67.1e6, 110e6);
        Assert.InRange(plan.TwoPassBytes, 134.2e6, 145e6);
        // Small N at rank 1 still splits N for parallelism (the dS planes stay under a quarter of dY).
        Assert.Equal(2, LoraBackwardPlan.For(7, 40, 1, 2, 4).Splits);
        // The tour's CPU shape runs the sweep too.
        Assert.True(LoraBackwardPlan.For(24, 48, 16, 2, 4).Fused);
        Assert.True(Kernels.Lora.Lora.BackwardPlan<DeviceHalf>(Devices.CpuSmall, 24, 48, 16).Fused);
    }

    [Fact]
    public void ByteModelKeepsTwoPassesWhereThePlanesOutweighDy()
    {
        // r = 64: 64-row chunks, 128 dB planes of N·r f32 (268 MB) against 67 MB of dY saved.
        var plan = LoraBackwardPlan.For(8192, 4096, 64, 2, 264);
        Assert.False(plan.Fused);
        Assert.True(plan.TwoPassBytes < plan.FusedBytes);
        // One chunk has no dB planes: the sweep wins at any rank.
        Assert.True(LoraBackwardPlan.For(32, 4096, 128, 2, 264).Fused);
    }

    public static TheoryData<CudaArchitecture> Architectures => new() { CudaArchitecture.SM_80, CudaArchitecture.SM_90 };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void SweepLoadsDyAsVectors(CudaArchitecture arch)
    {
        var f16 = Ptx.Compile(Ptx.Method(typeof(LoraDsDbSweep), nameof(LoraDsDbSweep.Kernel), typeof(DeviceHalf), typeof(F16),
            typeof(HalfWide<DeviceHalf, F16Word>)), arch);
        var f32 = Ptx.Compile(Ptx.Method(typeof(LoraDsDbSweep), nameof(LoraDsDbSweep.Kernel), typeof(float), typeof(F32), typeof(F32Wide)), arch);
        foreach (var ptx in new[] { f16, f32 })
        {
            Assert.Contains("ld.global.v4", ptx);
            Assert.Contains("bar.sync", ptx);
            Assert.DoesNotContain("atom.", ptx);
            Assert.DoesNotContain("FusedMultiplyAdd", ptx);
        }
    }
}
