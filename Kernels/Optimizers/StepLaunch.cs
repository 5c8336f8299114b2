using ILGPU;
using ILGPU.Runtime;

namespace Kernels.Optimizers;

/// <summary>Four consecutive elements: one 16-byte (f32) or 8-byte (f16/bf16) vector load or store.</summary>
internal struct Quad<T> where T : unmanaged
{
    public T X, Y, Z, W;
}

/// <summary>
/// The geometry and per-call flags of a step launch. A group walks "tiles" of whole quantization blocks, grid-stride;
/// <see cref="LanesPerBlock"/> consecutive threads share a block (each taking every LanesPerBlock-th 4-element chunk
/// of it), so a thread's chunks always belong to one block and its maxima reduce with a warp butterfly.
/// </summary>
internal struct StepLaunch
{
    public long Length;
    public int BlockSize;
    /// <summary>Threads per block: a power of two ≤ min(BlockSize / 4, group size).</summary>
    public int LanesPerBlock;
    public int BlocksPerTile;
    public int TileElements;
    public long TileCount;
    /// <summary>Lanes the warp butterfly combines before the shared atomics: min(LanesPerBlock, warp size).</summary>
    public int ReduceWidth;
    /// <summary>1 when parameters and gradients start on a 4-element boundary, so 4-element vector accesses are aligned.</summary>
    public int Vectorized;
    public int Signed1, Signed2;
    public int CountSkipped;
    public int Stochastic;
    public ulong Seed;
    public long Step;
    /// <summary>Index of element 0 in the whole parameter (a shard's start; 0 for a whole parameter): keys stochastic rounding.</summary>
    public long ElementOffset;

    public const int SlotsPerBlock = 2;

    /// <summary>Floats per shared code-book table (256 values; 255 search midpoints padded with +∞).</summary>
    public const int TableFloats = 256;

    /// <summary>
    /// Shared-memory words the quantized kernel needs: two banks of one key slot per state and block, the staged
    /// states, and each state's code values and search midpoints.
    /// </summary>
    public readonly int SharedInts(int states) => 2 * SlotsPerBlock * BlocksPerTile + states * (TileElements + 2 * TableFloats);

    /// <param name="accelerator">The target (its warp size bounds the butterfly).</param>
    /// <param name="groupSize">Threads per group, a power of two.</param>
    /// <param name="length">Elements.</param>
    /// <param name="blockSize">Quantization block size (a multiple of 4).</param>
    /// <param name="lanesCap">Upper bound on <see cref="LanesPerBlock"/>. A GPU uses no cap: a block gets up to
    /// BlockSize / 4 lanes, one coalesced chunk per thread. The CPU accelerator defaults to 1 lane per block (no
    /// shuffles, large tiles, few of its costly barriers); tests lift the cap to run the GPU geometry there.</param>
    public static StepLaunch For(Accelerator accelerator, int groupSize, long length, int blockSize, int lanesCap)
    {
        int chunks = blockSize / 4;
        int lanes = 1;
        while (lanes * 2 <= chunks && lanes * 2 <= groupSize && lanes * 2 <= lanesCap) lanes *= 2;
        int blocksPerTile = groupSize / lanes;
        int tileElements = blocksPerTile * blockSize;
        return new StepLaunch
        {
            Length = length,
            BlockSize = blockSize,
            LanesPerBlock = lanes,
            BlocksPerTile = blocksPerTile,
            TileElements = tileElements,
            TileCount = (length + tileElements - 1) / tileElements,
            ReduceWidth = Math.Min(lanes, accelerator.WarpSize),
        };
    }
}
