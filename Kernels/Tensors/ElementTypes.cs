using ILGPU;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tensors;

/// <summary>
/// Conversion between a storage element type and f32, as a struct so kernels generic over
/// <c>TElement : struct, IElementConverter&lt;T&gt;</c> are specialized at compile time (no virtual calls on the
/// device). Every kernel computes in f32 and converts at load and store.
/// </summary>
public interface IElementConverter<T> where T : unmanaged
{
    /// <summary>Widens a stored value to f32 (exact for f16 and bf16).</summary>
    float ToFloat(T value);

    /// <summary>Narrows an f32 value with round-to-nearest-even.</summary>
    T FromFloat(float value);
}

/// <summary>f32 storage.</summary>
public readonly struct F32 : IElementConverter<float>
{
    /// <inheritdoc />
    public float ToFloat(float value) => value;
    /// <inheritdoc />
    public float FromFloat(float value) => value;
}

/// <summary>fp16 storage (<see cref="ILGPU.Half"/> on the device).</summary>
public readonly struct F16 : IElementConverter<DeviceHalf>
{
    /// <inheritdoc />
    public float ToFloat(DeviceHalf value) => Fp16.Widen(value);
    /// <inheritdoc />
    public DeviceHalf FromFloat(float value) => Fp16.Narrow(value); // RNE on every device (see Fp16)
}

/// <summary>bf16 storage (<see cref="BFloat16"/>).</summary>
public readonly struct BF16 : IElementConverter<BFloat16>
{
    /// <inheritdoc />
    public float ToFloat(BFloat16 value) => value.ToFloat();
    /// <inheritdoc />
    public BFloat16 FromFloat(float value) => BFloat16.FromFloat(value);
}

/// <summary>The floating-point element types operations accept.</summary>
public enum ElementType
{
    /// <summary>IEEE binary32.</summary>
    Float32,
    /// <summary>IEEE binary16 (<see cref="ILGPU.Half"/> on the device, <see cref="System.Half"/> on the host).</summary>
    Float16,
    /// <summary>bfloat16 (<see cref="BFloat16"/>).</summary>
    BFloat16,
}

/// <summary>Maps CLR element types to <see cref="ElementType"/> and converts on the host.</summary>
public static class ElementTypes
{
    /// <summary>The element type of <typeparamref name="T"/>; throws for types operations do not accept.</summary>
    public static ElementType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? ElementType.Float32
        : typeof(T) == typeof(DeviceHalf) ? ElementType.Float16
        : typeof(T) == typeof(BFloat16) ? ElementType.BFloat16
        : throw new NotSupportedException(
            $"Element type {typeof(T).Name} is not supported: use float, ILGPU.Half (fp16) or Kernels.Tensors.BFloat16.");

    /// <summary>True when <typeparamref name="T"/> is float, fp16 or bf16.</summary>
    public static bool IsSupported<T>() where T : unmanaged =>
        typeof(T) == typeof(float) || typeof(T) == typeof(DeviceHalf) || typeof(T) == typeof(BFloat16);

    /// <summary>Short name used in messages and the tour: f32, f16, bf16.</summary>
    public static string Name(ElementType type) => type switch
    {
        ElementType.Float32 => "f32",
        ElementType.Float16 => "f16",
        _ => "bf16",
    };

    /// <summary>Short name of <typeparamref name="T"/>.</summary>
    public static string Name<T>() where T : unmanaged => Name(Of<T>());

    /// <summary>Bytes per element.</summary>
    public static int Size(ElementType type) => type == ElementType.Float32 ? 4 : 2;

    /// <summary>Host-side widening of any supported element to f32.</summary>
    public static float ToFloat<T>(T value) where T : unmanaged => value switch
    {
        float f => f,
        DeviceHalf h => Fp16.ToFloat(Fp16.Bits(h)),
        BFloat16 b => b.ToFloat(),
        _ => throw new NotSupportedException(typeof(T).Name),
    };

    /// <summary>Host-side narrowing of f32 to any supported element (round to nearest even).</summary>
    public static T FromFloat<T>(float value) where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return (T)(object)value;
        if (typeof(T) == typeof(DeviceHalf)) return (T)(object)Fp16.AsHalf(Fp16.FromFloat(value));
        if (typeof(T) == typeof(BFloat16)) return (T)(object)BFloat16.FromFloat(value);
        throw new NotSupportedException(typeof(T).Name);
    }

    /// <summary>Widens a host span of supported elements to f32.</summary>
    public static void ToFloat<T>(ReadOnlySpan<T> source, Span<float> destination) where T : unmanaged
    {
        if (destination.Length < source.Length) throw new ArgumentException("Destination too short.", nameof(destination));
        for (int i = 0; i < source.Length; i++) destination[i] = ToFloat(source[i]);
    }

    /// <summary>Narrows a host f32 span to supported elements.</summary>
    public static T[] FromFloat<T>(ReadOnlySpan<float> source) where T : unmanaged
    {
        var result = new T[source.Length];
        for (int i = 0; i < source.Length; i++) result[i] = FromFloat<T>(source[i]);
        return result;
    }
}
