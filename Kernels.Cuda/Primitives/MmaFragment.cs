namespace Kernels.Cuda.Primitives;

/// <summary>
/// One lane's share of an m16n8 f32 accumulator tile (PTX ISA "Matrix Fragments for mma.m16n8k16", C/D layout):
/// with <c>g = lane / 4</c> and <c>t = lane % 4</c>, <see cref="C0"/> = (row g, col 2t), <see cref="C1"/> = (g, 2t+1),
/// <see cref="C2"/> = (g+8, 2t), <see cref="C3"/> = (g+8, 2t+1).
/// </summary>
public struct MmaFragment
{
    /// <summary>Element (g, 2t).</summary>
    public float C0;
    /// <summary>Element (g, 2t+1).</summary>
    public float C1;
    /// <summary>Element (g+8, 2t).</summary>
    public float C2;
    /// <summary>Element (g+8, 2t+1).</summary>
    public float C3;

    /// <summary>Creates a fragment from its four values.</summary>
    public MmaFragment(float c0, float c1, float c2, float c3)
    {
        C0 = c0; C1 = c1; C2 = c2; C3 = c3;
    }

    /// <summary>Row of <see cref="C0"/>/<see cref="C1"/> inside the 16×8 tile for a lane (add 8 for C2/C3).</summary>
    public static int RowOf(int lane) => lane >> 2;

    /// <summary>Column of <see cref="C0"/>/<see cref="C2"/> inside the 16×8 tile for a lane (add 1 for C1/C3).</summary>
    public static int ColumnOf(int lane) => (lane & 3) << 1;
}
