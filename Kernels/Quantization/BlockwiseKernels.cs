using ILGPU;
using ILGPU.Runtime;
using Kernels.Tensors;

namespace Kernels.Quantization;

/// <summary>Scalars of one quantize launch (a struct of primitives: one kernel parameter).</summary>
internal struct QuantizeParams
{
    public long Length;
    /// <summary>log2 of the block size.</summary>
    public int BlockShift;
    /// <summary>Code bits: 8 or 4.</summary>
    public int Bits;
    /// <summary>Elements a group stages in shared memory per step: max(B, groupSize · ChunkElements).</summary>
    public int TileElements;
    /// <summary>Elements whose codes fill 16 bytes: 16 (8-bit) or 32 (4-bit).</summary>
    public int ChunkElements;
    public int SortedCount;
    /// <summary>1 when a sorted position must be mapped to its code through the sorted-codes table (FP4); 0 when they are equal.</summary>
    public int MapCodes;
    public int Stochastic;
    public ulong Seed;
    public ulong StreamOffset;
    /// <summary>1 when input and codes are 16-byte aligned and the vector views are valid.</summary>
    public int Vectorized;
}

/// <summary>Scalars of one dequantize launch.</summary>
internal struct DequantizeParams
{
    public long Length;
    public int BlockShift;
    public int Bits;
    public int ChunkElements;
    public int Vectorized;
    /// <summary>1 when absmax is itself quantized (nested): absmax = values8[nestedCodes[b]]·nestedAbsmax[b/256] + offset.</summary>
    public int Nested;
}

/// <summary>
/// The block-wise quantize and dequantize kernels. Quantize is one pass over the input: a group stages a tile (one or
/// more whole blocks) in shared memory with 16-byte loads, reduces each block's absmax there, and writes 16 codes
/// (8-bit) or 32 nibbles (4-bit) per thread with one 16-byte store. Dequantize reads 16 code bytes per thread and
/// writes 16-byte vectors. Both grid-stride, so the grid is sized to the device, and use 64-bit element indices.
/// </summary>
internal static class BlockwiseKernels
{
    /// <summary>Largest group size (the absmax reduction array is this long).</summary>
    public const int MaxGroupSize = 256;

    /// <summary>Nested (second-level) block size for absmax, as QLoRA.</summary>
    public const int NestedBlockShift = 8;

    public static void Quantize<T, TLanes>(
        ArrayView<T> input, ArrayView<Vec16> inputVec, ArrayView<float> offset,
        ArrayView<float> searchMidpoints, ArrayView<byte> sortedCodes, ArrayView<float> sortedValues,
        ArrayView<byte> codes, ArrayView<Vec16> codesVec, ArrayView<float> absmax, ArrayView<long> nonFinite,
        QuantizeParams p)
        where T : unmanaged
        where TLanes : struct, ILanes<T>
    {
        var stage = SharedMemory.GetDynamic<float>();
        var reduce = SharedMemory.Allocate<float>(MaxGroupSize);
        // The search table in breadth-first order (CodeBook.SearchMidpoints): level l of the search reads one of the
        // consecutive words [2^l, 2^(l+1)), so a warp's 32 loads of one level meet at most ⌈2^l / 32⌉ words per bank.
        var tree = SharedMemory.Allocate<float>(256);
        var sCodes = SharedMemory.Allocate<byte>(256);
        var sValues = SharedMemory.Allocate<float>(256);
        int g = Group.DimX, t = Group.IdxX;
        int tableSize = 1 << p.Bits;
        for (int i = t; i < tableSize; i += g)
        {
            tree[i] = searchMidpoints[i];
            sCodes[i] = sortedCodes[i];
            sValues[i] = sortedValues[i];
        }
        Group.Barrier();

        // The first two levels of the search live in registers: they are the same midpoints for every element, and
        // shared-memory loads (8 dependent ones per 8-bit code) are what bounds this kernel after the global traffic.
        float root = tree[1], left = tree[2], right = tree[3];

        var lanes = default(TLanes);
        int perVector = lanes.PerVector;
        float bias = offset.Length > 0 ? offset[0] : 0f;
        long n = p.Length;
        int tileElements = p.TileElements, chunk = p.ChunkElements;
        int chunksPerTile = tileElements / chunk;
        int blockElements = 1 << p.BlockShift;
        int threadsPerBlock = Math.Min(blockElements / chunk, g);
        long tiles = (n + tileElements - 1) / tileElements;
        long bad = 0;

        for (long tile = Grid.IdxX; tile < tiles; tile += Grid.DimX)
        {
            long start = tile * tileElements;
            int valid = (int)Math.Min(tileElements, n - start);

            // Stage the tile as f32: whole 16-byte vectors, then the scalar tail, then zeros past the end (zero never
            // raises absmax and is the 4-bit pad value).
            int scalarFrom = 0;
            if (p.Vectorized != 0)
            {
                int vectors = valid / perVector;
                long vectorBase = tile * (tileElements / perVector); // = start / perVector
                var stage4 = stage.Cast<Float4>();
                for (int v = t; v < vectors; v += g)
                {
                    Vec16 w = inputVec[vectorBase + v];
                    // 16-byte shared stores: scalar stores at a 4- or 8-word stride would conflict on banks.
                    for (int q = 0; q < perVector / 4; q++)
                        stage4[v * (perVector / 4) + q] = new Float4(
                            lanes.Lane(w, 4 * q) - bias, lanes.Lane(w, 4 * q + 1) - bias,
                            lanes.Lane(w, 4 * q + 2) - bias, lanes.Lane(w, 4 * q + 3) - bias);
                }
                scalarFrom = vectors * perVector;
            }
            for (int i = scalarFrom + t; i < tileElements; i += g)
                stage[i] = i < valid ? lanes.ToFloat(input[start + i]) - bias : 0f;
            Group.Barrier();

            // Finite absmax of the chunks this thread owns (all inside one block), then a segmented tree per block.
            float m = 0f;
            // Each thread walks its chunk starting at a thread-dependent rotation: a chunk is 16 or 32 words, so the
            // same element index in every thread would hit one or two shared-memory banks.
            for (int k = t; k < chunksPerTile; k += g)
                for (int r = 0; r < chunk; r++)
                {
                    float x = stage[k * chunk + ((r + t) & (chunk - 1))];
                    if (BlockwiseMath.IsFinite(x)) m = Math.Max(m, Math.Abs(x));
                    else bad++;
                }
            reduce[t] = m;
            Group.Barrier();
            for (int s = 1; s < threadsPerBlock; s <<= 1)
            {
                if ((t & (2 * s - 1)) == 0) reduce[t] = Math.Max(reduce[t], reduce[t + s]);
                Group.Barrier();
            }
            float blockMax = reduce[t & ~(threadsPerBlock - 1)];
            long firstElement = start + (long)t * chunk;
            if ((t & (threadsPerBlock - 1)) == 0 && firstElement < n) absmax[firstElement >> p.BlockShift] = blockMax;
            BlockwiseMath.Scale(blockMax, out float pre, out float inv);

            for (int k = t; k < chunksPerTile; k += g)
            {
                long e0 = start + (long)k * chunk;
                if (e0 >= n) break;
                uint w0 = 0, w1 = 0, w2 = 0, w3 = 0;
                for (int r = 0; r < chunk; r++)
                {
                    int j = (r + t) & (chunk - 1);
                    float y = BlockwiseMath.Normalize(stage[k * chunk + j], pre, inv);
                    // CodeBook.SearchPosition with its first two steps on registers: node → 2·node + (tree[node] < y).
                    int node = root < y ? 3 : 2;
                    node = 2 * node + ((node == 2 ? left : right) < y ? 1 : 0);
                    for (int level = 2; level < p.Bits; level++)
                        node = 2 * node + (tree[node] < y ? 1 : 0);
                    int pos = node - tableSize;
                    if (p.Stochastic != 0)
                        pos = BlockwiseMath.Stochastic(sValues, p.SortedCount, pos, y, BlockwiseMath.Uniform(p.Seed, p.StreamOffset, e0 + j));
                    uint code = p.MapCodes != 0 ? sCodes[pos] : (uint)pos; // only FP4's sorted order differs from its codes
                    // Byte b of the 16 holds element b (8-bit) or elements 2b (high nibble) and 2b+1 (low nibble).
                    int bit = p.Bits == 8 ? 8 * j : 8 * (j >> 1) + ((j & 1) == 0 ? 4 : 0);
                    int word = bit >> 5;
                    uint shifted = code << (bit & 31);
                    if (word == 0) w0 |= shifted;
                    else if (word == 1) w1 |= shifted;
                    else if (word == 2) w2 |= shifted;
                    else w3 |= shifted;
                }
                if (p.Vectorized != 0 && e0 + chunk <= n)
                {
                    codesVec[tile * chunksPerTile + k] = new Vec16(w0, w1, w2, w3); // = e0 / chunk, without a 64-bit divide
                }
                else
                {
                    long byteStart = p.Bits == 8 ? e0 : e0 >> 1;
                    long bytes = p.Bits == 8 ? n - e0 : (n - e0 + 1) >> 1;
                    for (int b = 0; b < 16 && b < bytes; b++)
                    {
                        uint word = b < 4 ? w0 : b < 8 ? w1 : b < 12 ? w2 : w3;
                        codes[byteStart + b] = (byte)(word >> (8 * (b & 3)));
                    }
                }
            }
            Group.Barrier(); // the next tile overwrites the stage
        }
        if (bad > 0 && nonFinite.Length > 0) Atomic.Add(ref nonFinite[0], bad);
    }

    public static void Dequantize<T, TLanes>(
        ArrayView<byte> codes, ArrayView<Vec16> codesVec, ArrayView<float> absmax,
        ArrayView<byte> nestedCodes, ArrayView<float> nestedAbsmax, ArrayView<float> nestedOffset, ArrayView<float> nestedValues,
        ArrayView<float> values, ArrayView<T> output, ArrayView<Vec16> outputVec, DequantizeParams p)
        where T : unmanaged
        where TLanes : struct, ILanes<T>
    {
        var table = SharedMemory.Allocate<float>(256);
        var table2 = SharedMemory.Allocate<float>(256);
        int g = Group.DimX, t = Group.IdxX;
        for (int i = t; i < (1 << p.Bits); i += g) table[i] = values[i];
        if (p.Nested != 0)
            for (int i = t; i < 256; i += g) table2[i] = nestedValues[i];
        Group.Barrier();

        var lanes = default(TLanes);
        int perVector = lanes.PerVector;
        long n = p.Length;
        int chunk = p.ChunkElements;
        long chunks = (n + chunk - 1) / chunk;
        float offset = p.Nested != 0 ? nestedOffset[0] : 0f;
        long stride = (long)Grid.DimX * g;
        for (long c = (long)Grid.IdxX * g + t; c < chunks; c += stride)
        {
            long e0 = c * chunk;
            long block = e0 >> p.BlockShift;
            float scale = p.Nested != 0
                ? table2[(int)nestedCodes[block]] * nestedAbsmax[block >> NestedBlockShift] + offset
                : absmax[block];
            if (p.Vectorized != 0 && e0 + chunk <= n)
            {
                Vec16 w = codesVec[c];
                long outBase = c * (chunk / perVector); // = e0 / perVector
                for (int v = 0; v < chunk / perVector; v++)
                {
                    int e = v * perVector;
                    float f0 = table[Code(w, e, p.Bits)] * scale;
                    float f1 = table[Code(w, e + 1, p.Bits)] * scale;
                    float f2 = table[Code(w, e + 2, p.Bits)] * scale;
                    float f3 = table[Code(w, e + 3, p.Bits)] * scale;
                    float f4 = 0f, f5 = 0f, f6 = 0f, f7 = 0f;
                    if (perVector == 8)
                    {
                        f4 = table[Code(w, e + 4, p.Bits)] * scale;
                        f5 = table[Code(w, e + 5, p.Bits)] * scale;
                        f6 = table[Code(w, e + 6, p.Bits)] * scale;
                        f7 = table[Code(w, e + 7, p.Bits)] * scale;
                    }
                    outputVec[outBase + v] = lanes.Pack(f0, f1, f2, f3, f4, f5, f6, f7);
                }
            }
            else
            {
                for (int j = 0; j < chunk && e0 + j < n; j++)
                {
                    long e = e0 + j;
                    int code = p.Bits == 8 ? codes[e] : (codes[e >> 1] >> ((e & 1) == 0 ? 4 : 0)) & 0xF;
                    output[e] = lanes.FromFloat(table[code] * scale);
                }
            }
        }
    }

    /// <summary>Code of element <paramref name="e"/> of a 16-byte chunk (4-bit: even elements in the high nibble).</summary>
    private static int Code(in Vec16 w, int e, int bits)
    {
        if (bits == 8) return (int)((w.Word(e >> 2) >> (8 * (e & 3))) & 0xFF);
        int b = e >> 1;
        return (int)((w.Word(b >> 2) >> (8 * (b & 3) + ((e & 1) == 0 ? 4 : 0))) & 0xF);
    }

    /// <summary>
    /// One pass of the canonical sum (see <see cref="BlockwiseReference.CanonicalSum"/>): each 4096-element chunk of
    /// <paramref name="source"/> becomes one partial, computed as 256 lanes of 16 strided sequential adds and a fixed
    /// pairwise tree, so the result does not depend on the group size or the device. Partials are divided by
    /// <paramref name="divisor"/> (1 except in the last pass, where it turns the sum into a mean).
    /// </summary>
    public static void CanonicalSumPass(ArrayView<float> source, ArrayView<float> partials, long length, float divisor)
    {
        var lanes = SharedMemory.Allocate<float>(CanonicalLanes);
        int g = Group.DimX, t = Group.IdxX;
        long chunks = (length + CanonicalChunk - 1) / CanonicalChunk;
        for (long c = Grid.IdxX; c < chunks; c += Grid.DimX)
        {
            long start = c * CanonicalChunk;
            for (int l = t; l < CanonicalLanes; l += g)
            {
                float acc = 0f;
                for (int i = 0; i < CanonicalChunk / CanonicalLanes; i++)
                {
                    long e = start + l + (long)i * CanonicalLanes;
                    if (e < length) acc += source[e];
                }
                lanes[l] = acc;
            }
            Group.Barrier();
            for (int s = CanonicalLanes / 2; s > 0; s >>= 1)
            {
                for (int l = t; l < s; l += g) lanes[l] += lanes[l + s];
                Group.Barrier();
            }
            if (t == 0) partials[c] = lanes[0] / divisor;
            Group.Barrier();
        }
    }

    public const int CanonicalChunk = 4096;
    public const int CanonicalLanes = 256;
}
