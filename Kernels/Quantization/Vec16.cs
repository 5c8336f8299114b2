using System.Runtime.InteropServices;
using ILGPU;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Quantization;

/// <summary>
/// Sixteen bytes moved as one unit: at O2 a load or store of this struct becomes <c>ld.global.v4.b32</c> /
/// <c>st.global.v4.b32</c>. Word <c>A</c> holds the lowest addresses (little-endian lanes).
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct Vec16
{
    public uint A, B, C, D;

    public Vec16(uint a, uint b, uint c, uint d)
    {
        A = a; B = b; C = c; D = d;
    }

    public readonly uint Word(int i) => i == 0 ? A : i == 1 ? B : i == 2 ? C : D;
}

/// <summary>Four floats moved as one unit (<c>st.shared.v4.f32</c> when staging a tile).</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct Float4
{
    public float X, Y, Z, W;

    public Float4(float x, float y, float z, float w)
    {
        X = x; Y = y; Z = z; W = w;
    }
}

/// <summary>
/// How an element type sits in a <see cref="Vec16"/>: 4 f32 or 8 f16/bf16 lanes. A struct generic parameter, so the
/// kernels are specialized per type at compile time.
/// </summary>
internal interface ILanes<T> where T : unmanaged
{
    /// <summary>Elements per 16 bytes.</summary>
    int PerVector { get; }
    float ToFloat(T value);
    T FromFloat(float value);
    /// <summary>Widens lane <paramref name="i"/> of <paramref name="v"/>.</summary>
    float Lane(in Vec16 v, int i);
    /// <summary>Narrows up to 8 values into one vector (f32 uses the first 4).</summary>
    Vec16 Pack(float f0, float f1, float f2, float f3, float f4, float f5, float f6, float f7);
}

internal readonly struct F32Lanes : ILanes<float>
{
    public int PerVector => 4;
    public float ToFloat(float value) => value;
    public float FromFloat(float value) => value;
    public float Lane(in Vec16 v, int i) => Interop.IntAsFloat(v.Word(i));
    public Vec16 Pack(float f0, float f1, float f2, float f3, float f4, float f5, float f6, float f7) =>
        new(Interop.FloatAsInt(f0), Interop.FloatAsInt(f1), Interop.FloatAsInt(f2), Interop.FloatAsInt(f3));
}

internal readonly struct F16Lanes : ILanes<DeviceHalf>
{
    public int PerVector => 8;
    public float ToFloat(DeviceHalf value) => Fp16.Widen(value);
    public DeviceHalf FromFloat(float value) => Fp16.Narrow(value);
    public float Lane(in Vec16 v, int i) => (float)Interop.IntAsFloat((ushort)(v.Word(i >> 1) >> ((i & 1) * 16)));
    private static uint Bits(float f) => Fp16.NarrowBits(f);
    public Vec16 Pack(float f0, float f1, float f2, float f3, float f4, float f5, float f6, float f7) =>
        new(Bits(f0) | (Bits(f1) << 16), Bits(f2) | (Bits(f3) << 16), Bits(f4) | (Bits(f5) << 16), Bits(f6) | (Bits(f7) << 16));
}

internal readonly struct BF16Lanes : ILanes<BFloat16>
{
    public int PerVector => 8;
    public float ToFloat(BFloat16 value) => value.ToFloat();
    public BFloat16 FromFloat(float value) => BFloat16.FromFloat(value);
    public float Lane(in Vec16 v, int i) => Interop.IntAsFloat((v.Word(i >> 1) >> ((i & 1) * 16)) << 16);
    private static uint Bits(float f) => BFloat16.FromFloat(f).Bits;
    public Vec16 Pack(float f0, float f1, float f2, float f3, float f4, float f5, float f6, float f7) =>
        new(Bits(f0) | (Bits(f1) << 16), Bits(f2) | (Bits(f3) << 16), Bits(f4) | (Bits(f5) << 16), Bits(f6) | (Bits(f7) << 16));
}
