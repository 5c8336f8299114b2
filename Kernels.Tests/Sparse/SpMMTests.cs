using Kernels.Engine;
using Kernels.Sparse;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Sparse;

public class SpMMTests
{
    private static TiledCslArrays Encode(float[] w, int m, int k, ElementType valueType,
        TiledCslWordOrder order = TiledCslWordOrder.RowMajor) => valueType == ElementType.BFloat16
        ? TiledCslEncoder.Encode(SparseTestData.ToBFloat16(w), m, k, wordOrder: order)
        : TiledCslEncoder.Encode(SparseTestData.ToHalf(w), m, k, wordOrder: order);

    /// <summary>Runs SpMM on the 32-lane CPU device and compares with the f64 reference; returns the plan.</summary>
    private static SpMMPlan Check(Seeded seed, int m, int k, int n, double sparsity, ElementType valueType, SpMMPath path,
        SpMM.Tuning tuning = default, bool clustered = true, TiledCslWordOrder order = TiledCslWordOrder.RowMajor)
    {
        var device = Devices.CpuWarp32;
        var w = SparseTestData.Weights(seed, m, k, sparsity, valueType, clustered);
        var xf = SparseTestData.Activations(seed, n, k, valueType);
        var host = Encode(w, m, k, valueType, order);
        var expected = new double[(long)n * m];
        SpMMReference.Multiply(xf, host, expected);
        using var matrix = TiledCslMatrix.Upload(device, host);
        SpMMPlan plan;
        float[] actual;
        if (valueType == ElementType.BFloat16)
        {
            using var x = device.Upload(SparseTestData.ToBFloat16(xf), n, k);
            using var y = device.Allocate<BFloat16>(n, m);
            Poison.Fill(y);
            plan = SpMM.Multiply(x.ReadOnlySpan, matrix, y.Span, path, tuning);
            actual = Compare.ToFloat<BFloat16>(y.ToArray());
        }
        else
        {
            using var x = device.Upload(SparseTestData.ToDeviceHalf(xf), n, k);
            using var y = device.Allocate<DeviceHalf>(n, m);
            Poison.Fill(y);
            plan = SpMM.Multiply(x.ReadOnlySpan, matrix, y.Span, path, tuning);
            actual = Compare.ToFloat<DeviceHalf>(y.ToArray());
        }
        string what = $"SpMM {m}×{k} N={n} {sparsity:P0} {valueType} {plan}";
        Poison.AssertAllWritten<float>(actual, what, seed);
        Compare.Close(actual, expected, Compare.BoundFor(valueType), what, seed);
        return plan;
    }

    // One launch per sparsity (the 32-lane CPU device runs 128 OS threads a group: each launch costs seconds), with
    // N spread over 1..33 so that single tokens, partial 16-token tiles and several N tiles are all covered.
    [Theory]
    [InlineData(0.0, 1)]    // every tile 100 % dense: twice what the registers stage, so the overflow loop runs
    [InlineData(0.5, 17)]
    [InlineData(0.7, 8)]
    [InlineData(0.9, 33)]   // LargeTile (N > 32)
    [InlineData(0.99, 3)]
    [InlineData(1.0, 2)]    // no words at all
    public void SparsePathMatchesReference(double sparsity, int n)
    {
        var plan = Check(Seeded.Create(), 200, 100, n, sparsity, ElementType.Float16, SpMMPath.Sparse);
        Assert.Equal(SpMMPath.Sparse, plan.Path);
        Assert.Equal(SpMMPath.Sparse, plan.Requested);
    }

    [Fact]
    public void BFloat16SparsePathMatchesReference() =>
        Check(Seeded.Create(), 200, 100, 16, 0.7, ElementType.BFloat16, SpMMPath.Sparse, order: TiledCslWordOrder.BankSpread);

    [Fact]
    public void SplitKMatchesReference()
    {
        var plan = Check(Seeded.Create(), 130, 300, 5, 0.8, ElementType.Float16, SpMMPath.Sparse, new SpMM.Tuning(Splits: 3));
        Assert.Equal(3, plan.Splits);
    }

    [Fact]
    public void WideTilesTakeHalfOfEachTiledCslTile() =>
        // 64-row engine tiles scatter only their half of each 128-row Tiled-CSL tile.
        Check(Seeded.Create(), 200, 100, 20, 0.6, ElementType.Float16, SpMMPath.Sparse, new SpMM.Tuning(Shape: SpMM.SparseShape.Wide));

    [Fact]
    public void ByteModelPicksDenseAtLowSparsityAndSparseAtHigh()
    {
        var seed = Seeded.Create();
        var dense = Check(seed, 200, 100, 4, 0.3, ElementType.BFloat16, SpMMPath.Auto, clustered: false);
        Assert.Equal(SpMMPath.Dense, dense.Path);
        Assert.Equal(SpMMPath.Auto, dense.Requested);
        var sparse = Check(seed, 200, 100, 4, 0.9, ElementType.Float16, SpMMPath.Auto, clustered: false);
        Assert.Equal(SpMMPath.Sparse, sparse.Path);
    }

    [Fact]
    public void DensePathCachesTheDecodedWeights()
    {
        var device = Devices.CpuWarp32;
        var w = SparseTestData.Weights(Seeded.Create(), 40, 30, 0.8, ElementType.Float16, clustered: false);
        using var matrix = TiledCslMatrix.Upload(device, Encode(w, 40, 30, ElementType.Float16));
        Assert.Equal(SpMMPath.Sparse, SpMM.Plan(matrix, 2).Path);
        Assert.Equal(SpMMPath.Dense, SpMM.Plan(matrix, 2, SpMMPath.Dense).Path);
        using var x = device.Allocate<DeviceHalf>(2, 30);
        x.Span.Clear();
        using var y = device.Allocate<DeviceHalf>(2, 40);
        Assert.False(matrix.DenseCache);
        SpMM.Multiply(x.ReadOnlySpan, matrix, y.Span, SpMMPath.Dense);
        Assert.True(matrix.DenseCache);
        matrix.DropDenseCache();
        Assert.False(matrix.DenseCache);
    }

    [Fact]
    public void RejectsBadArgumentsAndWritesNothing()
    {
        var device = Devices.CpuWarp32;
        var w = SparseTestData.Weights(Seeded.Create(), 40, 30, 0.8, ElementType.Float16, clustered: false);
        using var matrix = TiledCslMatrix.Upload(device, Encode(w, 40, 30, ElementType.Float16));
        using var x = device.Allocate<DeviceHalf>(3, 30);
        x.Span.Clear();
        using var y = device.Allocate<DeviceHalf>(3, 40);
        Poison.Fill(y, (DeviceHalf)1.5f); // not NaN: Half's NaN is unequal to itself
        var before = y.ToArray();
        using var xWrongK = device.Allocate<DeviceHalf>(3, 31);
        using var yWrongM = device.Allocate<DeviceHalf>(3, 41);
        using var yWrongN = device.Allocate<DeviceHalf>(4, 40);
        using var xBf = device.Allocate<BFloat16>(3, 30);
        using var yBf = device.Allocate<BFloat16>(3, 40);
        using var xOther = Devices.CpuSmall.Allocate<DeviceHalf>(3, 30);

        Assert.Equal("x", Assert.Throws<ArgumentException>(() => SpMM.Multiply(xWrongK.ReadOnlySpan, matrix, y.Span)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => SpMM.Multiply(x.ReadOnlySpan, matrix, yWrongM.Span)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => SpMM.Multiply(x.ReadOnlySpan, matrix, yWrongN.Span)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => SpMM.Multiply(xBf.ReadOnlySpan, matrix, yBf.Span)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentException>(() => SpMM.Multiply(xOther.ReadOnlySpan, matrix, y.Span)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => SpMM.Multiply(x.ReadOnlySpan, matrix, y.Span, (SpMMPath)7));
        Poison.AssertUnchanged(y, before, "y");
    }

    [Fact]
    public void SparseKernelEmitsTensorCoreAndVectorInstructions()
    {
        foreach (var arch in new[] { ILGPU.Runtime.Cuda.CudaArchitecture.SM_80 })
        {
            var kernel = typeof(TileEngine).GetMethod(nameof(TileEngine.Kernel))!
                .MakeGenericMethod(typeof(SkinnyTile), typeof(F16Mma), typeof(TiledCslTileProducer), typeof(StoreEpilogue<DeviceHalf, F16>));
            var ptx = Ptx.Compile(kernel, arch);
            Assert.Contains("mma.sync.aligned.m16n8k16", ptx);
            Assert.Contains("ld.global.nc.v4", ptx);   // the sparse words, 16 bytes a load
            Assert.Contains("cp.async", ptx);          // the activations
            Assert.Contains("ldmatrix", ptx);
            Assert.Contains("st.shared.v4", ptx);      // the zero-fill of the weight tile
        }
    }
}
