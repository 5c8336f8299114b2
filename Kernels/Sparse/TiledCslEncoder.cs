using System.Runtime.InteropServices;
using Kernels.Tensors;

namespace Kernels.Sparse;

/// <summary>
/// Dense row-major M×K fp16 or bf16 weights (the <c>nn.Linear.weight</c> out × in layout) to Tiled-CSL, parallel over
/// tile rows. Output is byte-identical to Flash-LLM's <c>InitSparseMatrixA_API_NoReorder</c> for shapes it accepts
/// (M % 128 == 0, K % 64 == 0) and inputs without −0: words in row-major scan order of the tile, and each tile's
/// <c>(4 − nnz % 4) % 4</c> pads at the first zero cells met in that scan; with <see cref="TiledCslWordOrder.BankSpread"/>,
/// byte-identical to its reordering <c>InitSparseMatrixA_API</c> instead.
/// </summary>
/// <remarks>
/// Policies: a value is stored when it is not ±0 (Flash-LLM's <c>|v| &gt; 0</c>), so −0 reads back as +0 and pads
/// always carry +0 (Flash-LLM copies the cell's own zero, so its pad may be 0x8000 where ours is 0x0000). NaN is an
/// error (Flash-LLM silently drops it). ±Inf is stored. Any M and K: the tile grid covers the shape padded to
/// multiples of 128×64, cells of the padding are zero, and the true shape is kept. No density limit: a tile may hold
/// all 8192 of its cells.
/// </remarks>
public static class TiledCslEncoder
{
    /// <summary>
    /// Encodes <paramref name="dense"/> (M·K elements, row-major). With <paramref name="targetSparsity"/> null every
    /// nonzero is kept; otherwise the matrix is first pruned by magnitude: the ⌊(1 − s)·M·K⌋ largest |w| survive, ties
    /// at the threshold kept in row-major order, so the result is at least <paramref name="targetSparsity"/> sparse.
    /// <typeparamref name="T"/> is <see cref="System.Half"/> or <see cref="ILGPU.Half"/> (fp16) or <see cref="BFloat16"/>.
    /// <paramref name="wordOrder"/> picks Flash-LLM's plain (default) or bank-spread word order inside each tile.
    /// </summary>
    public static TiledCslArrays Encode<T>(ReadOnlySpan<T> dense, int rows, int columns, double? targetSparsity = null,
        TiledCslWordOrder wordOrder = TiledCslWordOrder.RowMajor) where T : unmanaged
    {
        if (!Enum.IsDefined(wordOrder)) throw new ArgumentOutOfRangeException(nameof(wordOrder), wordOrder, "Unknown word order.");
        var valueType = ValueTypeOf<T>(nameof(dense));
        if (rows <= 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "The matrix needs at least one row.");
        if (columns <= 0) throw new ArgumentOutOfRangeException(nameof(columns), columns, "The matrix needs at least one column.");
        long size = (long)rows * columns;
        if (dense.Length != size)
            throw new ArgumentException($"dense has {dense.Length} elements but a {rows}×{columns} matrix needs exactly {size}.", nameof(dense));
        if (targetSparsity is { } s && !(s >= 0 && s <= 1))
            throw new ArgumentOutOfRangeException(nameof(targetSparsity), s, "Target sparsity must lie in [0, 1].");
        var bits = MemoryMarshal.Cast<T, ushort>(dense);
        RejectNaN(bits, rows, columns, valueType);
        if (targetSparsity is { } target)
        {
            var pruned = Prune(bits, rows, columns, target);
            return EncodeBits(pruned, rows, columns, valueType, wordOrder);
        }
        return EncodeBits(bits, rows, columns, valueType, wordOrder);
    }

    /// <summary>The Tiled-CSL value type a 16-bit host element type stands for.</summary>
    internal static ElementType ValueTypeOf<T>(string argument) where T : unmanaged =>
        typeof(T) == typeof(System.Half) || typeof(T) == typeof(ILGPU.Half) ? ElementType.Float16
        : typeof(T) == typeof(BFloat16) ? ElementType.BFloat16
        : throw new ArgumentException(
            $"{argument}: element type {typeof(T).Name} is not a Tiled-CSL value type (System.Half, ILGPU.Half or BFloat16).", argument);

    /// <summary>Throws unless <typeparamref name="T"/> is a host type of <paramref name="valueType"/>.</summary>
    internal static void RequireValueType<T>(ElementType valueType, string argument) where T : unmanaged
    {
        var actual = ValueTypeOf<T>(argument);
        if (actual != valueType)
            throw new ArgumentException(
                $"{argument} holds {ElementTypes.Name(actual)} elements but the matrix stores {ElementTypes.Name(valueType)} values.", argument);
    }

    private static void RejectNaN(ReadOnlySpan<ushort> bits, int rows, int columns, ElementType valueType)
    {
        long first = long.MaxValue;
        var gate = new object();
        unsafe
        {
            fixed (ushort* p = bits)
            {
                nint a = (nint)p;
                Parallel.For(0, rows, r =>
                {
                    var row = (ushort*)a + (long)r * columns;
                    for (int c = 0; c < columns; c++)
                        if (TiledCsl.IsNaN(row[c], valueType))
                        {
                            lock (gate) first = Math.Min(first, (long)r * columns + c);
                            return;
                        }
                });
            }
        }
        if (first != long.MaxValue)
            throw new ArgumentException(
                $"dense[{first}] (row {first / columns}, column {first % columns}) is NaN; Tiled-CSL stores no NaN (Flash-LLM would silently drop it).",
                "dense");
    }

    /// <summary>
    /// Magnitude pruning. For fp16 and bf16 alike, the order of |w| is the order of the 15 low bits as an unsigned
    /// integer, so a histogram over 32768 magnitude codes finds the exact threshold without sorting.
    /// </summary>
    private static ushort[] Prune(ReadOnlySpan<ushort> bits, int rows, int columns, double target)
    {
        long size = (long)rows * columns;
        long keep = (long)Math.Floor((1.0 - target) * size + 1e-9);
        var histogram = new long[1 << 15];
        var gate = new object();
        var result = bits.ToArray();
        Parallel.For(0, rows, () => new long[1 << 15], (r, _, local) =>
        {
            var row = result.AsSpan((int)((long)r * columns), columns);
            foreach (var b in row) local[b & 0x7FFF]++;
            return local;
        }, local => { lock (gate) for (int i = 0; i < local.Length; i++) histogram[i] += local[i]; });

        long nonzeros = size - histogram[0];
        if (keep >= nonzeros) return result;
        // Threshold code: count(> thr) < keep <= count(>= thr).
        long above = 0;
        int threshold = (1 << 15) - 1;
        while (above + histogram[threshold] < keep) above += histogram[threshold--];
        long tiesToKeep = keep - above; // zero when keep == 0 (then threshold ends at 0, and zeros are never kept)
        if (threshold == 0) tiesToKeep = 0;

        // Ties at the threshold are kept in row-major order: count them per row, then each row knows its budget.
        var tiesBefore = new long[rows + 1];
        Parallel.For(0, rows, r =>
        {
            long n = 0;
            foreach (var b in result.AsSpan((int)((long)r * columns), columns)) if ((b & 0x7FFF) == threshold) n++;
            tiesBefore[r + 1] = n;
        });
        for (int r = 0; r < rows; r++) tiesBefore[r + 1] += tiesBefore[r];
        Parallel.For(0, rows, r =>
        {
            var row = result.AsSpan((int)((long)r * columns), columns);
            long tie = tiesBefore[r];
            for (int c = 0; c < row.Length; c++)
            {
                int magnitude = row[c] & 0x7FFF;
                if (magnitude > threshold) continue;
                if (magnitude == threshold && threshold != 0 && tie++ < tiesToKeep) continue;
                row[c] = 0;
            }
        });
        return result;
    }

    private static TiledCslArrays EncodeBits(ReadOnlySpan<ushort> bits, int rows, int columns, ElementType valueType, TiledCslWordOrder wordOrder)
    {
        int tileRows = TiledCsl.TilesAlong(rows, TiledCsl.TileRows);
        int tileColumns = TiledCsl.TilesAlong(columns, TiledCsl.TileColumns);
        long tiles = (long)tileRows * tileColumns;
        if (tiles + TiledCsl.ExtraOffsets > Array.MaxLength)
            throw new ArgumentException($"A {rows}×{columns} matrix has too many tiles ({tiles}) for one offset array.", "dense");
        var nonzerosPerTile = new int[tiles];
        unsafe
        {
            fixed (ushort* p = bits)
            {
                nint a = (nint)p;
                Parallel.For(0, tileRows, i =>
                {
                    var src = (ushort*)a;
                    int r0 = i * TiledCsl.TileRows, r1 = Math.Min(rows, r0 + TiledCsl.TileRows);
                    var counts = nonzerosPerTile.AsSpan((int)((long)i * tileColumns), tileColumns);
                    for (int r = r0; r < r1; r++)
                    {
                        var row = src + (long)r * columns;
                        for (int c = 0; c < columns; c++)
                            if (!TiledCsl.IsZero(row[c])) counts[c / TiledCsl.TileColumns]++;
                    }
                });

                var offsets = new int[tiles + TiledCsl.ExtraOffsets];
                long vectors = 0, nonzeros = 0;
                int maxWords = 0;
                for (long t = 0; t < tiles; t++)
                {
                    int n = nonzerosPerTile[t];
                    int padded = (n + 3) & ~3;
                    nonzeros += n;
                    maxWords = Math.Max(maxWords, padded);
                    vectors += padded / TiledCsl.WordsPerVector;
                    if (vectors * TiledCsl.WordsPerVector > Array.MaxLength)
                        throw new ArgumentException($"The {rows}×{columns} matrix has too many nonzeros for one word array.", "dense");
                    offsets[t + 1] = (int)vectors;
                }
                offsets[tiles + 1] = offsets[tiles];
                var words = new uint[vectors * TiledCsl.WordsPerVector];

                bool spread = wordOrder == TiledCslWordOrder.BankSpread;
                Parallel.For(0, tileRows, i =>
                {
                    var src = (ushort*)a;
                    Span<int> firstZero = stackalloc int[32];
                    for (int j = 0; j < tileColumns; j++)
                    {
                        long t = (long)i * tileColumns + j;
                        long p = (long)offsets[t] * TiledCsl.WordsPerVector;
                        long tileStart = p;
                        int pads = (TiledCsl.WordsPerVector - nonzerosPerTile[t] % TiledCsl.WordsPerVector) % TiledCsl.WordsPerVector;
                        // Bank spreading places pads itself; it needs each bank's first zero cell instead.
                        int inlinePads = spread ? 0 : pads;
                        firstZero.Fill(-1);
                        for (int lr = 0; lr < TiledCsl.TileRows; lr++)
                        {
                            int r = i * TiledCsl.TileRows + lr;
                            for (int lc = 0; lc < TiledCsl.TileColumns; lc++)
                            {
                                int c = j * TiledCsl.TileColumns + lc;
                                ushort v = r < rows && c < columns ? src[(long)r * columns + c] : (ushort)0;
                                int loc = TiledCsl.Location(lr, lc);
                                if (!TiledCsl.IsZero(v)) words[p++] = TiledCsl.Word(v, loc);
                                else if (inlinePads > 0) { inlinePads--; words[p++] = TiledCsl.Word(0, loc); }
                                else if (spread && firstZero[TiledCslBankSpread.BankOf(loc)] < 0) firstZero[TiledCslBankSpread.BankOf(loc)] = loc;
                            }
                        }
                        if (spread)
                        {
                            int count = nonzerosPerTile[t] + pads;
                            TiledCslBankSpread.Deal(words.AsSpan((int)tileStart, count), nonzerosPerTile[t], firstZero);
                        }
                    }
                });
                return new TiledCslArrays(words, offsets, rows, columns, valueType, nonzeros, maxWords);
            }
        }
    }
}
