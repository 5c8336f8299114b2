using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// Checks Tiled-CSL arrays before any kernel reads them. A kernel trusts offsets to index the word array and
/// locations to index a 8192-element shared tile; on the CPU accelerator a wrong index kills the process and on a GPU
/// it corrupts memory, so every array that did not come from our own encoder goes through here.
/// </summary>
/// <remarks>
/// Rules, in the order they are checked:
/// <list type="number">
/// <item>shape positive; <c>tileOffsets.Length == T + 2</c> with T tiles of the padded shape;</item>
/// <item><c>tileOffsets[0] == 0</c>, non-decreasing, <c>tileOffsets[T + 1] == tileOffsets[T]</c> (the trailing empty tile),
/// <c>4 · tileOffsets[T + 1] == words.Length</c>;</item>
/// <item>at most 8192 words a tile (a tile has 8192 cells; Flash-LLM's pads never push a tile above that);</item>
/// <item>every location below 8192;</item>
/// <item>no value is NaN, and no nonzero lies outside the true M×K shape (the padded edge must read as zero);</item>
/// <item>no two nonzero words of a tile share a location, and no zero-valued word (a pad) points at a nonzero's cell.
/// Flash-LLM pads are zero-valued words at cells that are already zero, so scattering them in any order is harmless;
/// its reordering encoder can put two pads on the same zero cell, which is therefore allowed.</item>
/// </list>
/// Pads may carry +0 or −0 (Flash-LLM's no-reorder encoder copies the cell's own zero).
/// </remarks>
public static class TiledCslValidator
{
    /// <summary>What validation learned about valid arrays.</summary>
    /// <param name="NonzeroCount">Words whose value is not ±0.</param>
    /// <param name="MaxTileWords">Largest word count of any tile, pads included.</param>
    public readonly record struct Summary(long NonzeroCount, int MaxTileWords);

    /// <summary>
    /// Validates Flash-LLM-layout arrays for a matrix of true shape <paramref name="rows"/>×<paramref name="columns"/>;
    /// throws <see cref="ArgumentException"/> naming the array and the first violation.
    /// </summary>
    public static Summary Validate(ReadOnlySpan<uint> words, ReadOnlySpan<int> tileOffsets, int rows, int columns, ElementType valueType)
    {
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "Tiled-CSL needs at least one row.");
        if (columns <= 0) throw new ArgumentOutOfRangeException(nameof(columns), columns, "Tiled-CSL needs at least one column.");
        if (valueType is not (ElementType.Float16 or ElementType.BFloat16))
            throw new ArgumentException($"Tiled-CSL values are 16-bit: fp16 or bf16, not {valueType}.", nameof(valueType));
        int tileRowCount = TiledCsl.TilesAlong(rows, TiledCsl.TileRows);
        int tileColumnCount = TiledCsl.TilesAlong(columns, TiledCsl.TileColumns);
        long tiles = (long)tileRowCount * tileColumnCount;
        if (tileOffsets.Length != tiles + TiledCsl.ExtraOffsets)
            throw new ArgumentException(
                $"tileOffsets has {tileOffsets.Length} entries but a {rows}×{columns} matrix has {tiles} tiles of 128×64 and needs {tiles + 2}.",
                nameof(tileOffsets));
        if (tileOffsets[0] != 0)
            throw new ArgumentException($"tileOffsets[0] is {tileOffsets[0]}, must be 0.", nameof(tileOffsets));
        for (long t = 0; t <= tiles; t++)
        {
            int a = tileOffsets[(int)t], b = tileOffsets[(int)t + 1];
            if (b < a)
                throw new ArgumentException($"tileOffsets decreases at tile {t}: {a} then {b}.", nameof(tileOffsets));
            if ((long)(b - a) * TiledCsl.WordsPerVector > TiledCsl.TileElements && t < tiles)
                throw new ArgumentException(
                    $"tile {t} has {(long)(b - a) * 4} words, more than the 8192 cells of a 128×64 tile.", nameof(tileOffsets));
        }
        if (tileOffsets[(int)tiles + 1] != tileOffsets[(int)tiles])
            throw new ArgumentException(
                $"tileOffsets[{tiles + 1}] is {tileOffsets[(int)tiles + 1]} but the trailing empty tile needs it equal to tileOffsets[{tiles}] = {tileOffsets[(int)tiles]}.",
                nameof(tileOffsets));
        long expectedWords = (long)tileOffsets[(int)tiles] * TiledCsl.WordsPerVector;
        if (words.Length != expectedWords)
            throw new ArgumentException(
                $"words has {words.Length} entries but tileOffsets[{tiles}] = {tileOffsets[(int)tiles]} vectors need exactly {expectedWords}.",
                nameof(words));

        // Per-tile checks run in parallel; the first failure (lowest tile) is reported.
        long nonzeros = 0;
        int maxWords = 0;
        long firstBadTile = long.MaxValue;
        string? firstBad = null;
        var gate = new object();
        unsafe
        {
            fixed (uint* wp = words)
            fixed (int* op = tileOffsets)
            {
                nint wAddr = (nint)wp, oAddr = (nint)op;
                Parallel.For(0, tileRowCount,
                    () => (Occupied: new ulong[TiledCsl.TileElements / 64], Nonzeros: 0L, Max: 0),
                    (i, _, local) =>
                    {
                        var w = (uint*)wAddr;
                        var o = (int*)oAddr;
                        for (int j = 0; j < tileColumnCount; j++)
                        {
                            long t = (long)i * tileColumnCount + j;
                            long begin = (long)o[t] * 4, end = (long)o[t + 1] * 4;
                            local.Max = Math.Max(local.Max, (int)(end - begin));
                            string? error = CheckTile(w, begin, end, i, j, rows, columns, valueType, local.Occupied, ref local.Nonzeros);
                            if (error is not null)
                                lock (gate)
                                    if (t < firstBadTile) { firstBadTile = t; firstBad = error; }
                        }
                        return local;
                    },
                    local =>
                    {
                        lock (gate)
                        {
                            nonzeros += local.Nonzeros;
                            maxWords = Math.Max(maxWords, local.Max);
                        }
                    });
            }
        }
        if (firstBad is not null) throw new ArgumentException(firstBad, nameof(words));
        return new Summary(nonzeros, maxWords);
    }

    private static unsafe string? CheckTile(uint* words, long begin, long end, int tileRow, int tileColumn, int rows, int columns,
        ElementType valueType, ulong[] occupied, ref long nonzeros)
    {
        Array.Clear(occupied);
        long t = 0;
        for (long p = begin; p < end; p++)
        {
            uint word = words[p];
            int loc = TiledCsl.LocationOf(word);
            ushort bits = TiledCsl.ValueBits(word);
            if (loc >= TiledCsl.TileElements)
                return $"words[{p}] = 0x{word:X8} (tile {tileRow},{tileColumn}) has location {loc}, outside the 8192 cells of a tile.";
            if (TiledCsl.IsNaN(bits, valueType))
                return $"words[{p}] = 0x{word:X8} (tile {tileRow},{tileColumn}) holds a NaN value.";
            if (TiledCsl.IsZero(bits)) continue;
            int r = tileRow * TiledCsl.TileRows + TiledCsl.RowOf(loc);
            int c = tileColumn * TiledCsl.TileColumns + TiledCsl.ColumnOf(loc);
            if (r >= rows || c >= columns)
                return $"words[{p}] = 0x{word:X8} puts a nonzero at ({r},{c}), outside the true {rows}×{columns} shape.";
            ulong bit = 1UL << (loc & 63);
            if ((occupied[loc >> 6] & bit) != 0)
                return $"words[{p}] = 0x{word:X8} (tile {tileRow},{tileColumn}) repeats location {loc} of an earlier nonzero.";
            occupied[loc >> 6] |= bit;
            t++;
        }
        for (long p = begin; p < end; p++)
        {
            uint word = words[p];
            if (!TiledCsl.IsZero(TiledCsl.ValueBits(word))) continue;
            int loc = TiledCsl.LocationOf(word);
            if ((occupied[loc >> 6] & (1UL << (loc & 63))) != 0)
                return $"words[{p}] = 0x{word:X8} (tile {tileRow},{tileColumn}) is a zero pad at location {loc}, which holds a nonzero: scattering it would race with that nonzero.";
        }
        nonzeros += t;
        return null;
    }
}
