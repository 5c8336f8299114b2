namespace Kernels.Tensors;

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
