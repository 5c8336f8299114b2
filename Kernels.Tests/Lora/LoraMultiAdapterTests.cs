using Kernels.Lora;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Lora;

/// <summary>The adapter pool, batches and the BGMV decode path.</summary>
public class LoraMultiAdapterTests
{
    [Theory]
    [InlineData(new[] { 0, -1, 2, 1, -1, 0, 2 })]
    [InlineData(new[] { -1, -1, -1 })]
    [InlineData(new[] { 1 })]
    public void BgmvMatchesReference(int[] indices)
    {
        BgmvCase<DeviceHalf>(indices);
        BgmvCase<BFloat16>(indices);
    }

    private static void BgmvCase<T>(int[] indices) where T : unmanaged
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        const int k = 36, n = 20;
        int m = indices.Length;
        var (typed, host) = LoraTestData.Adapters<T>(seed, k, n, 8, 16, 1);
        using var set = LoraAdapterSet<T>.Create(device, k, n, typed);
        using var batch = LoraBatch.FromTokens(device, indices);
        using var x = LoraOperand<T>.Random(device, seed, 1f, m, k);
        using var y = LoraOperand<T>.Random(device, seed, 1f, m, n);
        Kernels.Lora.Lora.Bgmv<T>(x.Device, set, batch, y.Device);
        var expected = y.Host.Select(v => (double)v).ToArray();
        LoraReference.Bgmv(x.Host, host, indices, m, k, n, expected);
        var got = Compare.ToFloat<T>(y.Device.ToArray());
        Compare.Close(got, expected, LoraTestData.Bound<T>(), $"BGMV {ElementTypes.Name<T>()}", seed);
        for (int i = 0; i < m; i++)
            if (indices[i] < 0)
                for (int o = 0; o < n; o++)
                    Assert.True(got[i * n + o] == y.Host[i * n + o], $"row {i} has no adapter and must stay unchanged {seed.Tag}");
    }

    [Fact]
    public void AdapterSetRecordsRanksScalesAndFactors()
    {
        var seed = Seeded.Create();
        var device = Devices.CpuSmall;
        var (typed, _) = LoraTestData.Adapters<float>(seed, 5, 3, 2, 7);
        using var set = LoraAdapterSet<float>.Create(device, 5, 3, typed);
        Assert.Equal(2, set.Count);
        Assert.Equal(7, set.MaxRank);
        Assert.Equal(7, set.Rank(1));
        Assert.Equal(typed[1].Scale, set.Scale(1));
        Compare.Exact<float>(set.A(1).ToArray(), typed[1].A, "A(1)", seed);
        Compare.Exact<float>(set.B(0).ToArray(), typed[0].B, "B(0)", seed);
    }

    [Fact]
    public void SegmentsExpandToRows()
    {
        using var batch = LoraBatch.FromSegments(Devices.CpuSmall, [0, 2, 2, 5, 6], [3, 0, -1, 1]);
        Assert.Equal(new[] { 3, 3, -1, -1, -1, 1 }, batch.RowAdapters.ToArray());
        Assert.Equal(3, batch.MaxAdapterId);
    }
}
