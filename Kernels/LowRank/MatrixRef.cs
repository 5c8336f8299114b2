using ILGPU;
using ILGPU.Runtime;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>
/// A logical Rows×Cols f32 matrix in device memory: row-major with leading dimension <see cref="Ld"/>, or the
/// transpose of such a matrix. <see cref="T"/> is free (it flips the flag), so the algorithms here are written once
/// and run on Gᵀ by flipping descriptors instead of copying data.
/// </summary>
internal readonly record struct MatrixRef(ArrayView<float> View, int Rows, int Cols, int Ld, bool IsTransposed)
{
    /// <summary>The transpose, sharing the memory.</summary>
    public MatrixRef T => new(View, Cols, Rows, Ld, !IsTransposed);

    /// <summary>Rows and columns of the stored (row-major) matrix.</summary>
    public int StoredRows => IsTransposed ? Cols : Rows;

    /// <summary>True when every stored row starts on a 16-byte boundary, so rows can be read as <see cref="Float4"/>.</summary>
    public bool VectorAligned => Ld % 4 == 0 && View.LoadEffectiveAddressAsPtr().ToInt64() % 16 == 0;

    /// <summary>A dense row-major matrix over the start of <paramref name="view"/>.</summary>
    public static MatrixRef Dense(ArrayView<float> view, int rows, int cols) =>
        new(view.SubView(0, Math.Max(1L, (long)rows * cols)), rows, cols, Math.Max(1, cols), false);

    /// <summary>A rank-2 view whose last dimension is contiguous (any row stride).</summary>
    public static MatrixRef Of(ReadOnlyDeviceTensorSpan<float> span) =>
        new(span.View.AsContiguous(), (int)span.Lengths[0], (int)span.Lengths[1],
            span.Lengths[0] <= 1 ? Math.Max(1, (int)span.Lengths[1]) : (int)span.Strides[0], false);

    /// <summary>A writable rank-2 view whose last dimension is contiguous.</summary>
    public static MatrixRef Of(DeviceTensorSpan<float> span) => Of(span.AsReadOnly());
}
