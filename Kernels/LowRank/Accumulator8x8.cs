using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>
/// The 8×8 register tile of one thread in <see cref="SimtGemm"/>: 64 f32 accumulators as struct fields, because ILGPU
/// 1.5.3 does not unroll loops and puts local arrays in <c>.local</c> memory. Rows 0–3 and 4–7 (and columns) are two
/// groups of four that the thread reads from shared memory as two 16-byte vectors each, half a tile apart, so the
/// lanes of a warp read consecutive vectors without bank conflicts.
/// </summary>
internal struct Accumulator8x8
{
    public float c00, c01, c02, c03, c04, c05, c06, c07;
    public float c10, c11, c12, c13, c14, c15, c16, c17;
    public float c20, c21, c22, c23, c24, c25, c26, c27;
    public float c30, c31, c32, c33, c34, c35, c36, c37;
    public float c40, c41, c42, c43, c44, c45, c46, c47;
    public float c50, c51, c52, c53, c54, c55, c56, c57;
    public float c60, c61, c62, c63, c64, c65, c66, c67;
    public float c70, c71, c72, c73, c74, c75, c76, c77;

    /// <summary>One rank-1 step: acc += a ⊗ b with a = (a0, a1) the thread's 8 rows and b = (b0, b1) its 8 columns.</summary>
    public void Fma(Float4 a0, Float4 a1, Float4 b0, Float4 b1)
    {
        c00 = a0.X * b0.X + c00;
        c01 = a0.X * b0.Y + c01;
        c02 = a0.X * b0.Z + c02;
        c03 = a0.X * b0.W + c03;
        c04 = a0.X * b1.X + c04;
        c05 = a0.X * b1.Y + c05;
        c06 = a0.X * b1.Z + c06;
        c07 = a0.X * b1.W + c07;
        c10 = a0.Y * b0.X + c10;
        c11 = a0.Y * b0.Y + c11;
        c12 = a0.Y * b0.Z + c12;
        c13 = a0.Y * b0.W + c13;
        c14 = a0.Y * b1.X + c14;
        c15 = a0.Y * b1.Y + c15;
        c16 = a0.Y * b1.Z + c16;
        c17 = a0.Y * b1.W + c17;
        c20 = a0.Z * b0.X + c20;
        c21 = a0.Z * b0.Y + c21;
        c22 = a0.Z * b0.Z + c22;
        c23 = a0.Z * b0.W + c23;
        c24 = a0.Z * b1.X + c24;
        c25 = a0.Z * b1.Y + c25;
        c26 = a0.Z * b1.Z + c26;
        c27 = a0.Z * b1.W + c27;
        c30 = a0.W * b0.X + c30;
        c31 = a0.W * b0.Y + c31;
        c32 = a0.W * b0.Z + c32;
        c33 = a0.W * b0.W + c33;
        c34 = a0.W * b1.X + c34;
        c35 = a0.W * b1.Y + c35;
        c36 = a0.W * b1.Z + c36;
        c37 = a0.W * b1.W + c37;
        c40 = a1.X * b0.X + c40;
        c41 = a1.X * b0.Y + c41;
        c42 = a1.X * b0.Z + c42;
        c43 = a1.X * b0.W + c43;
        c44 = a1.X * b1.X + c44;
        c45 = a1.X * b1.Y + c45;
        c46 = a1.X * b1.Z + c46;
        c47 = a1.X * b1.W + c47;
        c50 = a1.Y * b0.X + c50;
        c51 = a1.Y * b0.Y + c51;
        c52 = a1.Y * b0.Z + c52;
        c53 = a1.Y * b0.W + c53;
        c54 = a1.Y * b1.X + c54;
        c55 = a1.Y * b1.Y + c55;
        c56 = a1.Y * b1.Z + c56;
        c57 = a1.Y * b1.W + c57;
        c60 = a1.Z * b0.X + c60;
        c61 = a1.Z * b0.Y + c61;
        c62 = a1.Z * b0.Z + c62;
        c63 = a1.Z * b0.W + c63;
        c64 = a1.Z * b1.X + c64;
        c65 = a1.Z * b1.Y + c65;
        c66 = a1.Z * b1.Z + c66;
        c67 = a1.Z * b1.W + c67;
        c70 = a1.W * b0.X + c70;
        c71 = a1.W * b0.Y + c71;
        c72 = a1.W * b0.Z + c72;
        c73 = a1.W * b0.W + c73;
        c74 = a1.W * b1.X + c74;
        c75 = a1.W * b1.Y + c75;
        c76 = a1.W * b1.Z + c76;
        c77 = a1.W * b1.W + c77;
    }

    /// <summary>Columns 0–3 of row <paramref name="i"/> (i is a literal at every call site).</summary>
    public readonly Float4 Low(int i) => i switch
    {
        0 => new Float4(c00, c01, c02, c03),
        1 => new Float4(c10, c11, c12, c13),
        2 => new Float4(c20, c21, c22, c23),
        3 => new Float4(c30, c31, c32, c33),
        4 => new Float4(c40, c41, c42, c43),
        5 => new Float4(c50, c51, c52, c53),
        6 => new Float4(c60, c61, c62, c63),
        _ => new Float4(c70, c71, c72, c73),
    };

    /// <summary>Columns 4–7 of row <paramref name="i"/>.</summary>
    public readonly Float4 High(int i) => i switch
    {
        0 => new Float4(c04, c05, c06, c07),
        1 => new Float4(c14, c15, c16, c17),
        2 => new Float4(c24, c25, c26, c27),
        3 => new Float4(c34, c35, c36, c37),
        4 => new Float4(c44, c45, c46, c47),
        5 => new Float4(c54, c55, c56, c57),
        6 => new Float4(c64, c65, c66, c67),
        _ => new Float4(c74, c75, c76, c77),
    };
}
