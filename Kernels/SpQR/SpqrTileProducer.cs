using Kernels.Tensors;
using ILGPU;
using Kernels.Engine;

namespace Kernels.SpQR;

/// <summary>
/// The SpQR weight-tile producer of the tile engine (Kernels/Engine/README.md): decodes the engine's Rows×64 weight
/// tile (rows Row0.., packed columns K0..K0+63 = four SpQR tile columns) straight from the tile words into the
/// swizzled shared tile, then adds the outliers of each row in place, so the tensor cores multiply
/// fp16(ŵ + v) — exactly what <see cref="Spqr.Decode"/> writes. The activations must be in packed (permuted) column
/// order; <c>Spqr.Gemm</c> gathers them first.
/// <para><see cref="Begin"/> issues 16-byte loads (rows 2b and 2b+1 of one SpQR tile) into the producer's fields, so
/// their latency overlaps the previous stage's tensor-core work; <see cref="End"/> rebuilds each tile's second-order
/// word with three xor shuffles across the 8 lanes that hold its rows, decodes 32 weights per load and stores them as
/// 32-bit pairs; after a group barrier, thread t adds row t's outliers in the K window, walking a per-thread cursor
/// that only moves forward (K tiles arrive in order).</para>
/// </summary>
public struct SpqrTileProducer : IWeightTileProducer
{
    /// <summary>Tile words as 16-byte pairs (rows 2b, 2b+1 of a tile).</summary>
    public ArrayView<Word4> Dense;
    /// <summary>Outlier offsets (CSR or PTCSR).</summary>
    public ArrayView<int> RowOffsets;
    /// <summary>Outliers: column | fp16 value &lt;&lt; 16.</summary>
    public ArrayView<uint> ColVals;
    /// <summary>m.</summary>
    public int M;
    /// <summary>n (the engine's K).</summary>
    public int N;
    /// <summary>1 for PTCSR outliers.</summary>
    public int Ptcsr;

    // Per-thread state (the engine keeps the producer in registers).
    private Word4 first, second;
    private int cursor, end, step, started;

    /// <summary>Produces tiles of a validated matrix's buffers.</summary>
    internal SpqrTileProducer(SpqrMatrix matrix)
    {
        Dense = matrix.DenseWeights.Cast<Word4>();
        RowOffsets = matrix.RowOffsets;
        ColVals = matrix.ColVals;
        M = matrix.Rows;
        N = matrix.Columns;
        Ptcsr = matrix.Layout == SpqrSparseLayout.Ptcsr ? 1 : 0;
        first = default;
        second = default;
        cursor = end = step = started = 0;
    }

    /// <inheritdoc />
    public readonly bool HasEndPhase => true;

    /// <inheritdoc />
    public void Begin(in WeightTileRequest request)
    {
        first = Load(request, request.Thread);
        if (request.Rows > 64) second = Load(request, request.Thread + 128);
    }

    /// <inheritdoc />
    public void End(in WeightTileRequest request)
    {
        Store(request, first, request.Thread);
        if (request.Rows > 64) Store(request, second, request.Thread + 128);
        Group.Barrier(); // every dense element is in place before any thread adds an outlier to it
        AddOutliers(request);
    }

    // Work unit u: row pair p = u mod (Rows/2), SpQR tile column h = u / (Rows/2) of the four in the K window.
    // Consecutive lanes take consecutive row pairs, so 8 lanes hold one 16×16 tile and loads are coalesced.
    private readonly Word4 Load(in WeightTileRequest r, int u)
    {
        int pairs = r.Rows >> 1;
        int p = u % pairs, h = u / pairs;
        int row = r.Row0 + 2 * p;
        int tileCols = (N + 15) >> 4;
        int tc = (r.K0 >> 4) + h;
        if (row >= (((M + 15) >> 4) << 4) || tc >= tileCols) return default;
        return Dense[((row >> 4) * tileCols + tc) * 8 + ((row & 15) >> 1)];
    }

    private readonly void Store(in WeightTileRequest r, Word4 v, int u)
    {
        int pairs = r.Rows >> 1;
        int p = u % pairs, h = u / pairs;
        ulong w0 = v.X | ((ulong)v.Y << 32), w1 = v.Z | ((ulong)v.W << 32);
        var scales = SpqrMath.RowPair(w0, w1, p & 7);
        float s0 = scales.S0, z0 = scales.Z0, s1 = scales.S1, z1 = scales.Z1;
        int rowLocal = 2 * p;
        bool live0 = r.Row0 + rowLocal < M, live1 = r.Row0 + rowLocal + 1 < M;
        int c0 = h << 4;
        for (int i = 0; i < 16; i += 2)
        {
            int col = r.K0 + c0 + i;
            bool in0 = col < N, in1 = col + 1 < N; // columns past n (and padding codes) become zeros
            uint a = live0 && in0 ? Fp16.NarrowBits(SpqrMath.Dequantize(w0, 6 + 3 * i, s0, z0)) : 0u;
            uint a1 = live0 && in1 ? Fp16.NarrowBits(SpqrMath.Dequantize(w0, 9 + 3 * i, s0, z0)) : 0u;
            uint c = live1 && in0 ? Fp16.NarrowBits(SpqrMath.Dequantize(w1, 6 + 3 * i, s1, z1)) : 0u;
            uint c1 = live1 && in1 ? Fp16.NarrowBits(SpqrMath.Dequantize(w1, 9 + 3 * i, s1, z1)) : 0u;
            r.Shared[r.HalfIndex(rowLocal, c0 + i) >> 1] = a | (a1 << 16);
            r.Shared[r.HalfIndex(rowLocal + 1, c0 + i) >> 1] = c | (c1 << 16);
        }
    }

    private void AddOutliers(in WeightTileRequest r)
    {
        int t = r.Thread;
        int row = r.Row0 + t;
        if (t >= r.Rows || row >= M) return;
        if (started == 0)
        {
            if (Ptcsr != 0) { cursor = RowOffsets[row >> 4] + (row & 15); end = RowOffsets[(row >> 4) + 1]; step = 16; }
            else { cursor = RowOffsets[row]; end = RowOffsets[row + 1]; step = 1; }
            started = 1;
        }
        int limit = r.K0 + 64;
        while (cursor < end)
        {
            uint cv = ColVals[cursor];
            if (Ptcsr != 0 && cv == 0) { cursor = end; break; } // PTCSR padding ends the row
            int c = (int)(cv & 0xFFFFu);
            if (c >= limit) break;
            if (c >= r.K0)
            {
                int half = r.HalfIndex(t, c - r.K0);
                uint word = r.Shared[half >> 1];
                int shift = (half & 1) << 4;
                float current = Fp16.ToFloat((ushort)(word >> shift));
                uint sum = Fp16.NarrowBits(current + Fp16.ToFloat((ushort)(cv >> 16)));
                r.Shared[half >> 1] = (word & ~(0xFFFFu << shift)) | (sum << shift);
            }
            cursor += step;
        }
    }
}
