using ILGPU;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Tensors;

/// <summary>
/// A 16-bit element type seen as raw bits, so 16-byte vector loads (<see cref="Kernels.Cuda.Primitives.UInt4"/>,
/// eight elements) can be widened without a typed view per element. Struct-generic: specialized at compile time.
/// </summary>
internal interface IHalfWord<T> where T : unmanaged
{
    float Widen(uint bits);

    T Narrow(float value);

    ushort Bits(T value);
}

/// <summary>fp16 bits.</summary>
internal readonly struct F16Word : IHalfWord<DeviceHalf>
{
    public float Widen(uint bits) => (float)Interop.IntAsFloat((ushort)bits);

    public DeviceHalf Narrow(float value) => Fp16.Narrow(value);

    public ushort Bits(DeviceHalf value) => Interop.FloatAsInt(value);
}

/// <summary>bf16 bits.</summary>
internal readonly struct BF16Word : IHalfWord<BFloat16>
{
    public float Widen(uint bits) => Interop.IntAsFloat((bits & 0xFFFFu) << 16);

    public BFloat16 Narrow(float value) => BFloat16.FromFloat(value);

    public ushort Bits(BFloat16 value) => value.Bits;
}
