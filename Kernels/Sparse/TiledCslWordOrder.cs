namespace Kernels.Sparse;

/// <summary>
/// The order of the words inside each tile. It never changes the matrix (the kernel scatters words in any order and
/// the validator guarantees no two land on one nonzero cell); it changes shared-memory bank conflicts of the scatter.
/// </summary>
public enum TiledCslWordOrder
{
    /// <summary>
    /// Row-major scan order with each pad at the first zero cell met: Flash-LLM's <c>InitSparseMatrixA_API_NoReorder</c>
    /// ("v1"), byte for byte.
    /// </summary>
    RowMajor,

    /// <summary>
    /// Flash-LLM's ahead-of-time reordering (<c>InitSparseMatrixA_API</c>, "v2"), byte for byte: words bucketed by the
    /// shared-memory bank of their cell, pads on the emptiest bank's first zero cell, then dealt from the fullest bank
    /// to 32 lanes × 4 words, so the 32 two-byte stores of one warp instruction of the scatter (lane l of warp w holds
    /// vector 32·(4i + w) + l) tend to hit 32 different banks.
    /// </summary>
    BankSpread,
}

/// <summary>The <see cref="TiledCslWordOrder.BankSpread"/> deal of one tile, in place.</summary>
internal static class TiledCslBankSpread
{
    private const int Banks = 32, Lanes = 32;

    /// <summary>A cell's bank: 4-byte banks over a 128-byte row of 16-bit elements, i.e. swizzled column / 2.</summary>
    public static int BankOf(int location) => (location & 63) >> 1;

    /// <summary>
    /// <paramref name="tile"/> holds the tile's <paramref name="nonzeros"/> words in row-major scan order followed by room for
    /// its pads; <paramref name="firstZero"/>[b] is the location of the first zero cell of bank b in scan order (−1 if none).
    /// Rewrites the tile in the dealt order.
    /// </summary>
    public static void Deal(Span<uint> tile, int nonzeros, ReadOnlySpan<int> firstZero)
    {
        int total = tile.Length, pads = total - nonzeros;
        // Bucket stacks: a bank has 256 cells; pads can add at most 3 more.
        var bucket = new uint[Banks * 260];
        var size = new int[Banks];
        for (int i = 0; i < nonzeros; i++)
        {
            int b = BankOf(TiledCsl.LocationOf(tile[i]));
            bucket[b * 260 + size[b]++] = tile[i];
        }
        for (int p = 0; p < pads; p++)
        {
            int b = ArgMin(size);
            // The emptiest bank always has a zero cell: if it were full, every bank would be, and there would be no pads.
            bucket[b * 260 + size[b]++] = TiledCsl.Word(0, firstZero[b]);
        }

        int vectors = total / TiledCsl.WordsPerVector, repeat = vectors / Lanes, remained = vectors % Lanes;
        var tail = new uint[Lanes * 4];
        var tailSize = new int[Lanes];
        for (int v = 0; v < 4; v++)
            for (int l = 0; l < remained; l++)
                tail[l * 4 + tailSize[l]++] = Pop(bucket, size);
        int perLane = repeat * 4;
        var main = new uint[Lanes * Math.Max(1, perLane)];
        var mainSize = new int[Lanes];
        for (int r = 0; r < repeat; r++)
            for (int v = 0; v < 4; v++)
                for (int l = 0; l < Lanes; l++)
                    main[l * perLane + mainSize[l]++] = Pop(bucket, size);

        // Each lane's stack is written back last-in first-out: the first vector gets the last word dealt to the lane.
        for (int r = 0; r < repeat; r++)
            for (int v = 0; v < 4; v++)
                for (int l = 0; l < Lanes; l++)
                    tile[r * 128 + l * 4 + v] = main[l * perLane + --mainSize[l]];
        int t0 = repeat * 128;
        for (int v = 0; v < 4; v++)
            for (int l = 0; l < remained; l++)
                tile[t0 + l * 4 + v] = tail[l * 4 + --tailSize[l]];
    }

    private static uint Pop(uint[] bucket, int[] size)
    {
        int b = ArgMax(size);
        return bucket[b * 260 + --size[b]];
    }

    // First index of the extreme value, as a strict comparison scan finds it.
    private static int ArgMin(int[] size)
    {
        int best = 0;
        for (int i = 1; i < size.Length; i++) if (size[i] < size[best]) best = i;
        return best;
    }

    private static int ArgMax(int[] size)
    {
        int best = 0;
        for (int i = 1; i < size.Length; i++) if (size[i] > size[best]) best = i;
        return best;
    }
}
