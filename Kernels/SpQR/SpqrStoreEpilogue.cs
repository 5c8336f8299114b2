using ILGPU;
using Kernels.Engine;
using DeviceHalf = ILGPU.Half;

namespace Kernels.SpQR;

/// <summary>
/// Stores Y[n, m] = fp16(value) with round-to-nearest-even on every device. The engine's <c>StoreEpilogue</c> narrows
/// through <see cref="DeviceHalf"/>'s conversion, which on the CPU accelerator truncates (ILGPU 1.5.3's software half:
/// e.g. 2051 → 2050, 65520 → 65504), so CPU results would differ from the GPU's <c>cvt.rn</c> by an ulp; this adapter
/// uses the family's exact rounding instead.
/// </summary>
public readonly struct SpqrStoreEpilogue : ITileEpilogue
{
    /// <summary>The [tokens, m] output.</summary>
    public readonly ArrayView<DeviceHalf> Output;
    /// <summary>m, the elements between output rows.</summary>
    public readonly int RowStride;

    /// <summary>Creates the epilogue.</summary>
    public SpqrStoreEpilogue(ArrayView<DeviceHalf> output, int rowStride)
    {
        Output = output;
        RowStride = rowStride;
    }

    /// <inheritdoc />
    public void Store(int split, int m, int n, float value) => Output[(long)n * RowStride + m] = SpqrMath.Narrow(value);
}
