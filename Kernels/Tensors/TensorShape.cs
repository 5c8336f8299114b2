namespace Kernels.Tensors;

/// <summary>Lengths and strides (in elements, row-major by default) shared by device tensors and their views.</summary>
internal static class TensorShape
{
    public static nint[] DenseStrides(ReadOnlySpan<nint> lengths)
    {
        var strides = new nint[lengths.Length];
        nint s = 1;
        for (int i = lengths.Length - 1; i >= 0; i--)
        {
            strides[i] = lengths[i] <= 1 ? (lengths[i] == 0 ? 0 : s) : s;
            s *= Math.Max(lengths[i], 1);
        }
        return strides;
    }

    public static long Product(ReadOnlySpan<nint> lengths)
    {
        long n = 1;
        foreach (var l in lengths)
        {
            if (l < 0) throw new ArgumentOutOfRangeException(nameof(lengths), $"Tensor lengths must be non-negative, got {Format(lengths)}.");
            if (l != 0 && n > long.MaxValue / l)
                throw new ArgumentOutOfRangeException(nameof(lengths), $"Tensor lengths {Format(lengths)} hold more than {long.MaxValue} elements.");
            n *= l;
        }
        return n;
    }

    public static bool IsDense(ReadOnlySpan<nint> lengths, ReadOnlySpan<nint> strides)
    {
        if (lengths.Contains(0)) return true; // an empty tensor has no layout to violate
        nint s = 1;
        for (int i = lengths.Length - 1; i >= 0; i--)
        {
            if (lengths[i] != 1 && strides[i] != s) return false;
            s *= lengths[i];
        }
        return true;
    }

    /// <summary>Elements spanned from the first to one past the last element (0 for an empty tensor).</summary>
    public static long Extent(ReadOnlySpan<nint> lengths, ReadOnlySpan<nint> strides)
    {
        long last = 0;
        for (int i = 0; i < lengths.Length; i++)
        {
            if (lengths[i] == 0) return 0;
            last += (long)(lengths[i] - 1) * strides[i];
        }
        return last + 1;
    }

    public static string Format(ReadOnlySpan<nint> lengths) => "[" + string.Join(", ", lengths.ToArray()) + "]";
}
