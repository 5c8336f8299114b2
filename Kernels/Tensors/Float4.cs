using System.Runtime.InteropServices;

namespace Kernels.Tensors;

/// <summary>
/// Four f32 values as one 16-byte struct: loads and stores of it through a <c>Cast&lt;Float4&gt;()</c> view become
/// <c>ld.global.v4.f32</c> / <c>st.global.v4.f32</c> at O2 (docs/ilgpu.md §4).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Float4
{
    public float X, Y, Z, W;

    public Float4(float x, float y, float z, float w)
    {
        X = x;
        Y = y;
        Z = z;
        W = w;
    }

    public static Float4 operator *(float s, Float4 v) => new(s * v.X, s * v.Y, s * v.Z, s * v.W);

    public static Float4 operator +(Float4 a, Float4 b) => new(a.X + b.X, a.Y + b.Y, a.Z + b.Z, a.W + b.W);
}
