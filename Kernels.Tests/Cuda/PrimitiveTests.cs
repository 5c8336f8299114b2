using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;
using Xunit;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tests.Cuda;

/// <summary>
/// Each warp primitive against a plain matrix product or copy, with operands laid out by the PTX ISA's fragment
/// tables: on the 32-lane CPU device (the emulation) and, when present, on a GPU (the real instruction).
/// </summary>
public class PrimitiveTests
{
    private static ushort Bits(float v, bool bf16) =>
        bf16 ? BFloat16.FromFloat(v).Bits : ILGPU.Interop.FloatAsInt((DeviceHalf)v);

    private static double Value(ushort bits, bool bf16) =>
        bf16 ? new BFloat16(bits).ToFloat() : (float)ILGPU.Interop.IntAsFloat(bits);

    internal static void CheckMma(ComputeDevice device, bool bf16, bool scratch, double bound)
    {
        var seed = Seeded.Create();
        var a = seed.Normal(256).Select(v => Bits(v, bf16)).ToArray();
        var bt = seed.Normal(128).Select(v => Bits(v, bf16)).ToArray();
        var c = seed.Normal(128);
        using var da = device.Upload<ushort>(a);
        using var db = device.Upload<ushort>(bt);
        using var dc = device.Upload<float>(c);
        using var dd = device.Allocate<float>(128);
        Poison.Fill(dd);
        PrimitiveKernels.MmaKernel(device)(device.Stream, PrimitiveKernels.OneWarp(256), da.Span.View, db.Span.View,
            dc.Span.View, dd.Span.View, bf16 ? 1 : 0, scratch ? 1 : 0);
        var got = dd.ToArray();
        var expected = new double[128];
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 8; j++)
            {
                double s = c[i * 8 + j];
                for (int k = 0; k < 16; k++) s += Value(a[i * 16 + k], bf16) * Value(bt[j * 16 + k], bf16);
                expected[i * 8 + j] = s;
            }
        Compare.Close(got, expected, bound, $"mma.m16n8k16 {(bf16 ? "bf16" : "f16")} scratch={scratch} on {device}", seed);
    }

    internal static void CheckLdMatrix(ComputeDevice device, int matrices, bool trans, bool scratch)
    {
        var seed = Seeded.Create();
        var image = new uint[256]; // 64 rows of 16 bytes
        for (int i = 0; i < image.Length; i++) image[i] = (uint)seed.Random.NextInt64(0, 1L << 32);
        var order = Enumerable.Range(0, 64).OrderBy(_ => seed.Random.Next()).Take(32).ToArray();
        var rows = order.Select(r => r * 16).ToArray();
        using var dImage = device.Upload<uint>(image);
        using var dRows = device.Upload<int>(rows);
        using var dOut = device.Allocate<uint>(128);
        dOut.Span.Clear();
        PrimitiveKernels.LdMatrixKernel(device)(device.Stream, PrimitiveKernels.OneWarp(512), dImage.Span.View,
            dRows.Span.View, dOut.Span.View, matrices, trans ? 1 : 0, scratch ? 1 : 0);
        var got = dOut.ToArray();
        // Matrix i, element (r, c) = the 16-bit value c of the row whose byte offset lane 8i + r supplied.
        ushort M(int i, int r, int c)
        {
            uint word = image[rows[8 * i + r] / 4 + c / 2];
            return (ushort)((c & 1) == 0 ? word & 0xFFFF : word >> 16);
        }
        for (int i = 0; i < matrices; i++)
            for (int lane = 0; lane < 32; lane++)
            {
                int g = lane / 4, t = lane % 4;
                uint expected = trans
                    ? M(i, 2 * t, g) | ((uint)M(i, 2 * t + 1, g) << 16)
                    : M(i, g, 2 * t) | ((uint)M(i, g, 2 * t + 1) << 16);
                Assert.True(expected == got[i * 32 + lane],
                    $"ldmatrix x{matrices}{(trans ? ".trans" : "")} scratch={scratch} on {device}: matrix {i} lane {lane}: {got[i * 32 + lane]:X8} vs {expected:X8} {seed.Tag}");
            }
    }

    internal static void CheckCopies(ComputeDevice device)
    {
        var seed = Seeded.Create();
        var source = new uint[128];
        for (int i = 0; i < source.Length; i++) source[i] = (uint)seed.Random.NextInt64(1, 1L << 32);
        var valid = Enumerable.Range(0, 32).Select(l => l < 5 ? 4 * l : 4 * seed.Next(0, 5)).ToArray();
        using var dSource = device.Upload<uint>(source);
        using var dValid = device.Upload<int>(valid);
        using var dOut = device.Allocate<uint>(128);
        using var dLoaded = device.Allocate<uint>(128);
        ulong address = (ulong)dSource.Span.View.AsContiguous().LoadEffectiveAddressAsPtr().ToInt64();
        PrimitiveKernels.CopyKernel(device)(device.Stream, PrimitiveKernels.OneWarp(128), dSource.Span.View, address,
            dValid.Span.View, dOut.Span.View, dLoaded.Span.View);
        var got = dOut.ToArray();
        var expected = new uint[128];
        for (int l = 0; l < 32; l++)
            for (int w = 0; w < 4; w++)
                expected[4 * l + w] = w < valid[l] / 4 ? source[4 * l + w] : 0u;
        Compare.Exact<uint>(got, expected, $"cp.async 16 B with zero-fill on {device}", seed);
        Compare.Exact<uint>(dLoaded.ToArray(), source, $"ld.global.nc.v4 on {device}", seed);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void MmaMatchesMatrixProductOnCpu(bool bf16, bool scratch) => CheckMma(Devices.CpuWarp32, bf16, scratch, 1e-5);

    [Theory]
    [InlineData(1, false, false)]
    [InlineData(2, false, false)]
    [InlineData(4, false, false)]
    [InlineData(1, true, false)]
    [InlineData(2, true, false)]
    [InlineData(4, true, false)]
    [InlineData(4, false, true)]
    [InlineData(4, true, true)]
    public void LdMatrixFollowsFragmentLayoutOnCpu(int matrices, bool trans, bool scratch) =>
        CheckLdMatrix(Devices.CpuWarp32, matrices, trans, scratch);

    [Fact]
    public void CpAsyncAndNonCoherentLoadCopyOnCpu() => CheckCopies(Devices.CpuWarp32);

    [Fact]
    public void GpuMmaMatchesMatrixProduct()
    {
        var gpu = Devices.RequireCuda();
        foreach (bool bf16 in new[] { false, true }) CheckMma(gpu, bf16, scratch: true, bound: 1e-4);
    }

    [Fact]
    public void GpuLdMatrixFollowsFragmentLayout()
    {
        var gpu = Devices.RequireCuda();
        foreach (int n in new[] { 1, 2, 4 })
            foreach (bool trans in new[] { false, true })
                CheckLdMatrix(gpu, n, trans, scratch: false);
    }

    [Fact]
    public void GpuCpAsyncAndNonCoherentLoadCopy() => CheckCopies(Devices.RequireCuda());
}
