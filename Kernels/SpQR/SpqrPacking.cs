namespace Kernels.SpQR;

/// <summary>
/// Packs <see cref="SpqrUnpacked"/> arrays into the inference layout (the role of <c>spqr_quant</c>'s
/// <c>tensor_compress_interleaved</c> and <c>init_ptcsr</c>) and back. Unlike SpQR's packer, partial tiles are fine:
/// padding rows carry their tile's statistics bytes and word addressing uses the padded width.
/// </summary>
public static class SpqrPacking
{
    /// <summary>Packs and validates.</summary>
    public static SpqrPacked Pack(SpqrUnpacked u, SpqrSparseLayout layout = SpqrSparseLayout.Csr)
    {
        ArgumentNullException.ThrowIfNull(u);
        if (!Enum.IsDefined(layout))
            throw new ArgumentOutOfRangeException(nameof(layout), layout, "layout must be SpqrSparseLayout.Csr or SpqrSparseLayout.Ptcsr.");
        int tr = u.TileRows, tc = u.TileColumns;
        var words = new ulong[SpqrLayout.DenseWords(u.Rows, u.Columns)];
        Span<byte> codes = stackalloc byte[SpqrLayout.Tile];
        for (int r = 0; r < u.PaddedRows; r++)
        for (int c = 0; c < tc; c++)
        {
            for (int i = 0; i < SpqrLayout.Tile; i++) codes[i] = u.Codes[(long)r * u.PaddedColumns + c * SpqrLayout.Tile + i];
            int statsByte = u.Stats[(long)(r / SpqrLayout.Tile) * tc + c].Byte((r % SpqrLayout.Tile) >> 1);
            words[SpqrLayout.WordIndex(r, c, tc)] = SpqrLayout.Word(
                u.ScaleCodes[(long)r * tc + c], u.ZeroCodes[(long)r * tc + c], codes, statsByte);
        }

        var perm = new uint[(u.Columns + 1) / 2];
        for (int j = 0; j < u.Columns; j++) perm[j >> 1] |= (uint)u.Permutation[j] << (16 * (j & 1));

        int[] offsets;
        uint[] colVals;
        if (layout == SpqrSparseLayout.Csr)
        {
            offsets = (int[])u.OutlierRowOffsets.Clone();
            colVals = new uint[u.OutlierColumns.Length];
            for (int e = 0; e < colVals.Length; e++) colVals[e] = u.OutlierColumns[e] | ((uint)u.OutlierValues[e] << 16);
        }
        else
        {
            offsets = new int[tr + 1];
            for (int b = 0; b < tr; b++)
            {
                int maxNnz = 0;
                for (int r = b * 16; r < Math.Min(u.Rows, b * 16 + 16); r++)
                    maxNnz = Math.Max(maxNnz, u.OutlierRowOffsets[r + 1] - u.OutlierRowOffsets[r]);
                offsets[b + 1] = checked(offsets[b] + 16 * maxNnz);
            }
            colVals = new uint[offsets[tr]];
            for (int r = 0; r < u.Rows; r++)
            {
                int b = r / 16, j = r % 16;
                for (int e = u.OutlierRowOffsets[r], t = 0; e < u.OutlierRowOffsets[r + 1]; e++, t++)
                    colVals[offsets[b] + 16 * t + j] = u.OutlierColumns[e] | ((uint)u.OutlierValues[e] << 16);
            }
        }
        return new SpqrPacked(u.Rows, u.Columns, words, offsets, colVals, perm, layout);
    }

    /// <summary>Unpacks a packed matrix into its fields (PTCSR outliers come back as CSR).</summary>
    public static SpqrUnpacked Unpack(SpqrPacked p)
    {
        ArgumentNullException.ThrowIfNull(p);
        var u = new SpqrUnpacked(p.Rows, p.Columns);
        int tc = p.TileColumns;
        for (int r = 0; r < u.PaddedRows; r++)
        for (int c = 0; c < tc; c++)
        {
            ulong w = p.DenseWeights[SpqrLayout.WordIndex(r, c, tc)];
            u.ScaleCodes[(long)r * tc + c] = (byte)SpqrLayout.ScaleCode(w);
            u.ZeroCodes[(long)r * tc + c] = (byte)SpqrLayout.ZeroCode(w);
            for (int i = 0; i < SpqrLayout.Tile; i++)
                u.Codes[(long)r * u.PaddedColumns + c * SpqrLayout.Tile + i] = (byte)SpqrLayout.Code(w, i);
        }
        for (int tile = 0; tile < u.Stats.Length; tile++) u.Stats[tile] = TileStats(p.DenseWeights, tile);
        for (int j = 0; j < p.Columns; j++) u.Permutation[j] = (ushort)p.Permutation(j);

        var rows = new List<(ushort Column, ushort Value)>[p.Rows];
        for (int r = 0; r < p.Rows; r++) rows[r] = [];
        ForEachOutlier(p, (r, c, v) => rows[r].Add(((ushort)c, v)));
        var offsets = new int[p.Rows + 1];
        for (int r = 0; r < p.Rows; r++) offsets[r + 1] = offsets[r] + rows[r].Count;
        u.OutlierRowOffsets = offsets;
        u.OutlierColumns = rows.SelectMany(x => x.Select(e => e.Column)).ToArray();
        u.OutlierValues = rows.SelectMany(x => x.Select(e => e.Value)).ToArray();
        return u;
    }

    /// <summary>The second-order statistics of tile <paramref name="tile"/>, gathered from the bytes of its even rows.</summary>
    public static SecondOrderStats TileStats(ReadOnlySpan<ulong> denseWeights, long tile)
    {
        ulong s = 0;
        for (int b = 0; b < 8; b++) s |= (ulong)SpqrLayout.StatsByte(denseWeights[(int)(tile * 16 + 2 * b)]) << (8 * b);
        return new SecondOrderStats(s);
    }

    /// <summary>Calls <paramref name="visit"/>(row, permuted column, fp16 bits) for every outlier, rows ascending.</summary>
    public static void ForEachOutlier(SpqrPacked p, Action<int, int, ushort> visit)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(visit);
        if (p.Layout == SpqrSparseLayout.Csr)
        {
            for (int r = 0; r < p.Rows; r++)
                for (int e = p.RowOffsets[r]; e < p.RowOffsets[r + 1]; e++)
                    visit(r, (int)(p.ColVals[e] & 0xFFFF), (ushort)(p.ColVals[e] >> 16));
            return;
        }
        for (int r = 0; r < p.Rows; r++)
        {
            int b = r / 16, j = r % 16;
            for (int e = p.RowOffsets[b] + j; e < p.RowOffsets[b + 1]; e += 16)
                if (p.ColVals[e] != 0) visit(r, (int)(p.ColVals[e] & 0xFFFF), (ushort)(p.ColVals[e] >> 16));
        }
    }
}
