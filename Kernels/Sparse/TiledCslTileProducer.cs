using ILGPU;
using Kernels.Cuda.Primitives;
using Kernels.Engine;

namespace Kernels.Sparse;

/// <summary>
/// The sparse weight-tile producer of the tile engine (Flash-LLM's load-as-sparse): for each K step,
/// <see cref="Begin"/> zero-fills the shared weight tile with 16-byte stores and loads the Tiled-CSL tile's words
/// into registers with 16-byte <c>ld.global.nc.v4</c> loads (up to <see cref="StagedVectors"/> vectors a thread: 4096
/// words, a 50 %-dense tile) while the engine multiplies the previous tile; <see cref="End"/> scatters each word's
/// value to its location, which is already the engine's swizzled half-word index. Words beyond the staged ones
/// (tiles denser than 50 %, which Flash-LLM silently corrupts) are loaded and scattered in <see cref="End"/> as well:
/// slower for those tiles, never wrong.
/// </summary>
public struct TiledCslTileProducer : IWeightTileProducer
{
    /// <summary>Vectors (4 words) each of the 128 threads stages in registers per tile.</summary>
    public const int StagedVectors = 8;

    /// <summary>The word array (validated).</summary>
    public ArrayView<uint> Words;
    /// <summary>Device address of word 0 (for <c>ld.global.nc.v4</c>).</summary>
    public ulong WordsAddress;
    /// <summary>The T + 2 tile offsets, in vectors of 4 words.</summary>
    public ArrayView<int> TileOffsets;
    /// <summary>Tile columns of the matrix, ⌈K / 64⌉.</summary>
    public int TileColumns;

    // Staging registers (hand-unrolled: ILGPU would put an array in local memory) and the tile's vector range.
    private UInt4 s0, s1, s2, s3, s4, s5, s6, s7;
    private int begin, end;
    // Offsets of the tile after the one in flight, read in End so that Begin's word loads do not wait for them
    // (Flash-LLM's offset prefetch). Index t + 2 ≤ T + 1 always exists: the trailing entry is there for this.
    private int prefetchedTile, prefetchedBegin, prefetchedEnd;

    /// <summary>Creates the producer over a validated matrix's device arrays.</summary>
    public TiledCslTileProducer(ArrayView<uint> words, ulong wordsAddress, ArrayView<int> tileOffsets, int tileColumns)
    {
        Words = words;
        WordsAddress = wordsAddress;
        TileOffsets = tileOffsets;
        TileColumns = tileColumns;
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = default;
        begin = end = 0;
        prefetchedTile = -1;
        prefetchedBegin = prefetchedEnd = 0;
    }

    /// <inheritdoc />
    public readonly bool HasEndPhase => true;

    /// <inheritdoc />
    public void Begin(in WeightTileRequest request)
    {
        // Zero the tile: Rows × 128 bytes = Rows × 8 chunks of 16 bytes, 8 (Rows 128) or 4 (Rows 64) per thread.
        var chunks = request.Shared.Cast<UInt4>();
        int first = request.TileByteOffset >> 4;
        int count = request.Rows * 8;
        for (int c = request.Thread; c < count; c += TileEngineConstants.Threads)
            chunks[first + c] = default;

        int t = (request.Row0 >> 7) * TileColumns + request.KTile;
        if (t == prefetchedTile)
        {
            begin = prefetchedBegin;
            end = prefetchedEnd;
        }
        else
        {
            begin = TileOffsets[t];
            end = TileOffsets[t + 1];
        }
        int v = begin + request.Thread;
        s0 = Load(v);
        s1 = Load(v + 128);
        s2 = Load(v + 256);
        s3 = Load(v + 384);
        s4 = Load(v + 512);
        s5 = Load(v + 640);
        s6 = Load(v + 768);
        s7 = Load(v + 896);
    }

    /// <inheritdoc />
    public void End(in WeightTileRequest request)
    {
        var halves = request.Shared.Cast<ushort>();
        // A 64-row request takes the half of the 128-row Tiled-CSL tile it covers; 64 is a multiple of the swizzle's
        // 8-row period, so a location shifted by 64 rows is still the right swizzled index.
        int rowShift = request.Row0 & 127;
        int baseHalf = (request.TileByteOffset >> 1) - rowShift * TileEngineConstants.TileK;
        int lo = rowShift * TileEngineConstants.TileK, hi = lo + request.Rows * TileEngineConstants.TileK;
        int v = begin + request.Thread;
        Scatter(halves, s0, v, baseHalf, lo, hi);
        Scatter(halves, s1, v + 128, baseHalf, lo, hi);
        Scatter(halves, s2, v + 256, baseHalf, lo, hi);
        Scatter(halves, s3, v + 384, baseHalf, lo, hi);
        Scatter(halves, s4, v + 512, baseHalf, lo, hi);
        Scatter(halves, s5, v + 640, baseHalf, lo, hi);
        Scatter(halves, s6, v + 768, baseHalf, lo, hi);
        Scatter(halves, s7, v + 896, baseHalf, lo, hi);
        // Tiles denser than the staging holds: the rest, loaded and scattered here (never dropped).
        for (int rest = v + StagedVectors * TileEngineConstants.Threads; rest < end; rest += TileEngineConstants.Threads)
            Scatter(halves, GlobalLoad.NonCoherent4(Words, (long)rest * 4, WordsAddress), rest, baseHalf, lo, hi);

        int t = (request.Row0 >> 7) * TileColumns + request.KTile;
        prefetchedTile = t + 1;
        prefetchedBegin = TileOffsets[t + 1];
        prefetchedEnd = TileOffsets[t + 2];
    }

    private readonly UInt4 Load(int vector) =>
        vector < end ? GlobalLoad.NonCoherent4(Words, (long)vector * 4, WordsAddress) : default;

    private readonly void Scatter(ArrayView<ushort> halves, in UInt4 s, int vector, int baseHalf, int lo, int hi)
    {
        if (vector >= end) return;
        Put(halves, s.X, baseHalf, lo, hi);
        Put(halves, s.Y, baseHalf, lo, hi);
        Put(halves, s.Z, baseHalf, lo, hi);
        Put(halves, s.W, baseHalf, lo, hi);
    }

    private static void Put(ArrayView<ushort> halves, uint word, int baseHalf, int lo, int hi)
    {
        int loc = (int)(word >> 16);
        if (loc >= lo && loc < hi) halves[baseHalf + loc] = (ushort)word;
    }
}
