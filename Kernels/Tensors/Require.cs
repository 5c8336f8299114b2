using ILGPU;
using ILGPU.Runtime;

namespace Kernels.Tensors;

/// <summary>
/// The device bytes [<see cref="Start"/>, <see cref="End"/>) an argument covers, under its parameter name: what
/// <see cref="Require.Disjoint"/> compares. A view covers everything from its first element to one past its last.
/// </summary>
internal readonly record struct Footprint(string Name, long Start, long End)
{
    public static Footprint Of<T>(ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged
    {
        Require.Live(span, name);
        return span.IsEmptyView || span.FlattenedLength == 0 ? new(name, 0, 0) : Of(span.View.AsContiguous(), name);
    }

    public static Footprint Of<T>(DeviceTensorSpan<T> span, string name) where T : unmanaged => Of(span.AsReadOnly(), name);

    public static Footprint Of<T>(ReadOnlyDeviceTensorSpan<T>? span, string name) where T : unmanaged =>
        span is { } s ? Of(s, name) : new(name, 0, 0);

    public static Footprint Of<T>(ArrayView<T> view, string name) where T : unmanaged
    {
        if (view.Length == 0) return new(name, 0, 0);
        long start = view.LoadEffectiveAddressAsPtr().ToInt64();
        return new(name, start, start + view.LengthInBytes);
    }

    public bool Overlaps(in Footprint other) => Start < End && other.Start < other.End && Start < other.End && other.Start < End;
}

/// <summary>
/// Argument checks every operation runs before it launches anything, so bad input fails with a message that names
/// the argument and the shapes, and nothing is written.
/// </summary>
internal static class Require
{
    public static void Dense<T>(ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged =>
        TensorViewMath.RequireDense(span, name);

    public static void Dense<T>(DeviceTensorSpan<T> span, string name) where T : unmanaged =>
        TensorViewMath.RequireDense(span.AsReadOnly(), name);

    /// <summary>Refuses a view of a disposed tensor with <see cref="ObjectDisposedException"/>.</summary>
    public static void Live<T>(ReadOnlyDeviceTensorSpan<T> span, string name) where T : unmanaged =>
        TensorViewMath.RequireLive(span, name);

    /// <summary>
    /// Refuses a destination that shares device memory with another argument (an input it reads, or another
    /// destination): the kernels read and write in no defined order, so overlap gives wrong results silently.
    /// Operations that work in place document it and skip the check for that pair.
    /// </summary>
    public static void Disjoint(in Footprint output, params ReadOnlySpan<Footprint> others)
    {
        foreach (var other in others)
            if (output.Overlaps(other))
                throw new ArgumentException(
                    $"{output.Name} overlaps {other.Name} in device memory; this operation does not work in place, pass separate buffers.",
                    output.Name);
    }

    public static void SameDevice(Runtime.ComputeDevice expected, Runtime.ComputeDevice actual, string name)
    {
        if (!ReferenceEquals(expected, actual))
            throw new ArgumentException($"{name} lives on {actual?.Name ?? "no device"} but the operation runs on {expected.Name}.", name);
    }

    public static void Length(long actual, long expected, string name, string what)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} has {actual} elements but {what} needs exactly {expected}.", name);
    }

    public static void AtLeast(long actual, long needed, string name, string what)
    {
        if (actual < needed)
            throw new ArgumentException($"{name} has {actual} elements but {what} needs at least {needed}.", name);
    }

    public static void Shape(ReadOnlySpan<nint> actual, ReadOnlySpan<nint> expected, string name)
    {
        if (!actual.SequenceEqual(expected))
            throw new ArgumentException($"{name} has lengths {TensorShape.Format(actual)} but {TensorShape.Format(expected)} is required.", name);
    }

    public static void Rank(int actual, int expected, string name, ReadOnlySpan<nint> lengths)
    {
        if (actual != expected)
            throw new ArgumentException($"{name} must have rank {expected}, got lengths {TensorShape.Format(lengths)}.", name);
    }

    public static void Supported<T>(string name) where T : unmanaged
    {
        if (!ElementTypes.IsSupported<T>())
            throw new NotSupportedException($"{name}: element type {typeof(T).Name} is not supported (float, ILGPU.Half, BFloat16).");
    }
}
