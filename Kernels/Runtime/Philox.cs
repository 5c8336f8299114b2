namespace Kernels.Runtime;

/// <summary>Four 32-bit words: one Philox output block.</summary>
public struct UInt4Block
{
    /// <summary>Word 0.</summary>
    public uint X;
    /// <summary>Word 1.</summary>
    public uint Y;
    /// <summary>Word 2.</summary>
    public uint Z;
    /// <summary>Word 3.</summary>
    public uint W;
}

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a counter-based generator,
/// so any element's random numbers are a pure function of (key, counter) — dropout masks can be regenerated in a
/// backward pass and stochastic rounding is deterministic for a seed on every device. Usable inside kernels (32-bit
/// integer arithmetic only) and on the host, with identical results.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

    /// <summary>The 10-round Philox4x32 bijection of a 128-bit counter under a 64-bit key.</summary>
    public static UInt4Block Generate(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        // Ten rounds written out: ILGPU 1.5.3 does not unroll loops.
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1); k0 += W0; k1 += W1;
        Round(ref c0, ref c1, ref c2, ref c3, k0, k1);
        return new UInt4Block { X = c0, Y = c1, Z = c2, W = c3 };
    }

    /// <summary>
    /// Four random words for element group <paramref name="index"/> of stream <paramref name="offset"/> under
    /// <paramref name="seed"/>: counter = (index, offset), key = seed. Distinct (offset, index) pairs never collide.
    /// </summary>
    public static UInt4Block Generate(ulong seed, ulong offset, ulong index) =>
        Generate((uint)index, (uint)(index >> 32), (uint)offset, (uint)(offset >> 32), (uint)seed, (uint)(seed >> 32));

    /// <summary>Maps a random word to a float uniform in [0, 1) with 24 random bits (exact in fp32).</summary>
    public static float ToUniform(uint word) => (word >> 8) * (1.0f / 16777216.0f);

    /// <summary>One uniform [0, 1) float for element <paramref name="element"/>: word <c>element % 4</c> of block <c>element / 4</c>.</summary>
    public static float Uniform(ulong seed, ulong offset, ulong element)
    {
        var block = Generate(seed, offset, element >> 2);
        uint lane = (uint)(element & 3);
        uint word = lane == 0 ? block.X : lane == 1 ? block.Y : lane == 2 ? block.Z : block.W;
        return ToUniform(word);
    }

    private static void Round(ref uint c0, ref uint c1, ref uint c2, ref uint c3, uint k0, uint k1)
    {
        ulong p0 = (ulong)M0 * c0;
        ulong p1 = (ulong)M1 * c2;
        uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0;
        uint hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
        uint n0 = hi1 ^ c1 ^ k0;
        uint n2 = hi0 ^ c3 ^ k1;
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
    }
}
