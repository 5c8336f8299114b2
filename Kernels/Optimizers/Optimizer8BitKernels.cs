using ILGPU;
using Kernels.Quantization;
using Kernels.Tensors;

namespace Kernels.Optimizers;

/// <summary>
/// The fused step kernels. <see cref="QuantizedStep{TP,TPE,TG,TGE,TRule}"/> makes ONE pass over parameters,
/// gradients, codes and scales. A group walks tiles of whole quantization blocks (grid-stride), with
/// <see cref="StepLaunch.LanesPerBlock"/> threads on each block; per 4-element chunk a thread loads p and g with one
/// vector access each and the 4 codes of each state as one 32-bit word, dequantizes with the block's old scale, runs
/// the rule in f32, writes p, and stages the new states in shared memory while keeping its block maxima; a warp
/// butterfly and one shared atomic per warp segment finish each block's maxima; after a group barrier the staged
/// states are requantized against the new scales and written back (one code word per chunk) with the scales.
/// Nothing is read from global memory twice; the code books (values and search midpoints) are copied to shared memory
/// once per group, because the nearest-code search (<see cref="CodeBook.SearchPosition(ArrayView{float}, int, float)"/>,
/// used as is) makes 8 dependent loads per state and element.
/// </summary>
internal static class Optimizer8BitKernels
{
    internal static void QuantizedStep<TP, TPE, TG, TGE, TRule>(
        ArrayView<TP> parameters, ArrayView<TG> gradients,
        ArrayView<byte> codes1, ArrayView<float> absmax1, ArrayView<byte> codes2, ArrayView<float> absmax2,
        ArrayView<float> values1, ArrayView<float> search1, ArrayView<float> values2, ArrayView<float> search2,
        ArrayView<int> skipped, ArrayView<float> clipScale, StepScalars k, StepLaunch launch)
        where TP : unmanaged where TPE : struct, IParameterElement<TP>
        where TG : unmanaged where TGE : struct, IElementConverter<TG>
        where TRule : struct, IUpdateRule
    {
        int states = default(TRule).StateCount;
        // bitsandbytes' gnorm_scale times the percentile-clipping scale (1 without clipping), read once on the device.
        float gradientScale = k.GradientScale * clipScale[0];
        int tid = Group.IdxX;
        int groupSize = Group.DimX;
        int lanes = launch.LanesPerBlock;
        int blockInTile = tid / lanes;
        int laneInBlock = tid - blockInTile * lanes;
        int blockBase = blockInTile * launch.BlockSize;
        int chunksPerBlock = launch.BlockSize >> 2;
        long n = launch.Length;
        var shared = SharedMemory.GetDynamic<uint>();
        int bankSize = StepLaunch.SlotsPerBlock * launch.BlocksPerTile;
        var slots = shared.SubView(0, 2 * bankSize);
        var stage = shared.SubView(2 * bankSize, states * launch.TileElements).Cast<float>();
        // The code books live in shared memory: the nearest-code search makes 8 dependent loads per state and element.
        var tables = shared.SubView(2 * bankSize + states * launch.TileElements, states * 2 * StepLaunch.TableFloats).Cast<float>();
        var sharedValues1 = tables.SubView(0, StepLaunch.TableFloats);
        var sharedSearch1 = tables.SubView(StepLaunch.TableFloats, StepLaunch.TableFloats);
        var sharedValues2 = tables.SubView(states == 2 ? 2 * StepLaunch.TableFloats : 0, StepLaunch.TableFloats);
        var sharedSearch2 = tables.SubView(states == 2 ? 3 * StepLaunch.TableFloats : StepLaunch.TableFloats, StepLaunch.TableFloats);
        for (int i = tid; i < StepLaunch.TableFloats; i += groupSize)
        {
            sharedValues1[i] = values1[i];
            sharedSearch1[i] = i < search1.Length ? search1[i] : float.PositiveInfinity;
            if (states == 2)
            {
                sharedValues2[i] = values2[i];
                sharedSearch2[i] = i < search2.Length ? search2[i] : float.PositiveInfinity;
            }
        }
        int skippedHere = 0;

        // Two banks of absmax slots: the bank of the next tile is cleared while the current one is read, which saves
        // a barrier per tile.
        for (int i = tid; i < bankSize; i += groupSize) slots[i] = 0;
        Group.Barrier();
        int bank = 0;

        for (long tile = Grid.IdxX; tile < launch.TileCount; tile += Grid.DimX)
        {
            long tileStart = tile * launch.TileElements;
            long block = tile * launch.BlocksPerTile + blockInTile;
            bool blockExists = tileStart + blockBase < n;
            int slot = bank * bankSize + blockInTile * StepLaunch.SlotsPerBlock;

            // Pass 1: dequantize with the old scale, update, write p, stage the new states, this thread's maxima.
            var max = default(BlockMaxima);
            bool active = false;
            if (blockExists)
            {
                float scale1 = absmax1[block];
                float scale2 = states == 2 ? absmax2[block] : 0f;
                for (int c = laneInBlock; c < chunksPerBlock; c += lanes)
                {
                    int local = blockBase + (c << 2);
                    long e = tileStart + local;
                    if (e >= n) break;
                    active = true;
                    bool whole = e + 4 <= n;
                    bool vector = whole & launch.Vectorized != 0;

                    var p = LoadParameters<TP, TPE>(parameters, e, n, vector);
                    var g = LoadGradients<TG, TGE>(gradients, e, n, vector);
                    uint w1 = LoadCodes(codes1, e, n, whole);
                    uint w2 = states == 2 ? LoadCodes(codes2, e, n, whole) : 0u;

                    skippedHere += Element<TRule>(ref p.X, g.X * gradientScale, w1, w2, scale1, scale2, sharedValues1, sharedValues2, k,
                        states, stage, local, launch.TileElements, ref max);
                    if (e + 1 < n)
                        skippedHere += Element<TRule>(ref p.Y, g.Y * gradientScale, w1 >> 8, w2 >> 8, scale1, scale2, sharedValues1, sharedValues2, k,
                            states, stage, local + 1, launch.TileElements, ref max);
                    if (e + 2 < n)
                        skippedHere += Element<TRule>(ref p.Z, g.Z * gradientScale, w1 >> 16, w2 >> 16, scale1, scale2, sharedValues1, sharedValues2, k,
                            states, stage, local + 2, launch.TileElements, ref max);
                    if (e + 3 < n)
                        skippedHere += Element<TRule>(ref p.W, g.W * gradientScale, w1 >> 24, w2 >> 24, scale1, scale2, sharedValues1, sharedValues2, k,
                            states, stage, local + 3, launch.TileElements, ref max);

                    StoreParameters<TP, TPE>(parameters, e, n, vector, p, launch);
                }
            }

            // Block maxima: butterfly over the lanes of one block, then one shared atomic per warp segment. Every thread
            // takes part in the shuffles.
            for (int offset = 1; offset < launch.ReduceWidth; offset <<= 1)
            {
                max.Key1 = Max(max.Key1, Warp.ShuffleXor(max.Key1, offset));
                if (states == 2) max.Key2 = Max(max.Key2, Warp.ShuffleXor(max.Key2, offset));
            }
            if (active && (laneInBlock & (launch.ReduceWidth - 1)) == 0)
            {
                Atomic.Max(ref slots[slot], max.Key1);
                if (states == 2) Atomic.Max(ref slots[slot + 1], max.Key2);
            }
            Group.Barrier();

            // Pass 2: requantize the staged states against the new block scales.
            if (blockExists)
            {
                float scale1 = BlockScale.FromKey(launch.Signed1 != 0, slots[slot]);
                float inverse1 = BlockScale.Inverse(scale1);
                float scale2 = states == 2 ? BlockScale.FromKey(launch.Signed2 != 0, slots[slot + 1]) : 0f;
                float inverse2 = BlockScale.Inverse(scale2);
                for (int c = laneInBlock; c < chunksPerBlock; c += lanes)
                {
                    int local = blockBase + (c << 2);
                    long e = tileStart + local;
                    if (e >= n) break;
                    bool whole = e + 4 <= n;
                    Requantize(stage, local, e, n, whole, inverse1, sharedSearch1, codes1);
                    if (states == 2)
                        Requantize(stage.SubView(launch.TileElements), local, e, n, whole, inverse2, sharedSearch2, codes2);
                }
                if (laneInBlock == 0)
                {
                    absmax1[block] = scale1;
                    if (states == 2) absmax2[block] = scale2;
                }
            }
            int next = (bank ^ 1) * bankSize;
            for (int i = tid; i < bankSize; i += groupSize) slots[next + i] = 0;
            bank ^= 1;
            Group.Barrier();
        }

        if (launch.CountSkipped != 0 && skippedHere != 0) Atomic.Add(ref skipped[0], skippedHere);
    }

    /// <summary>The f32-state step (small tensors): grid-stride, one element per thread iteration, same rule and policy.</summary>
    internal static void F32Step<TP, TPE, TG, TGE, TRule>(
        ArrayView<TP> parameters, ArrayView<TG> gradients, ArrayView<float> state1, ArrayView<float> state2,
        ArrayView<int> skipped, ArrayView<float> clipScale, StepScalars k, StepLaunch launch)
        where TP : unmanaged where TPE : struct, IParameterElement<TP>
        where TG : unmanaged where TGE : struct, IElementConverter<TG>
        where TRule : struct, IUpdateRule
    {
        int states = default(TRule).StateCount;
        float gradientScale = k.GradientScale * clipScale[0];
        int skippedHere = 0;
        long stride = (long)Grid.DimX * Group.DimX;
        for (long i = (long)Grid.IdxX * Group.DimX + Group.IdxX; i < launch.Length; i += stride)
        {
            float p = default(TPE).ToFloat(parameters[i]);
            float g = default(TGE).ToFloat(gradients[i]) * gradientScale;
            float s1 = state1[i];
            float s2 = states == 2 ? state2[i] : 0f;
            if (ElementStep.Run<TRule>(ref p, g, ref s1, ref s2, k))
            {
                parameters[i] = RoundParameter<TP, TPE>(p, i, launch);
                state1[i] = s1;
                if (states == 2) state2[i] = s2;
            }
            else skippedHere++;
        }
        if (launch.CountSkipped != 0 && skippedHere != 0) Atomic.Add(ref skipped[0], skippedHere);
    }

    /// <summary>A thread's running <see cref="BlockScale.Key"/> maxima, per state.</summary>
    private struct BlockMaxima
    {
        public uint Key1, Key2;
    }

    private static uint Max(uint a, uint b) => a > b ? a : b;

    /// <summary>One element of pass 1; returns 1 when the update was skipped.</summary>
    private static int Element<TRule>(ref float p, float g, uint code1, uint code2, float scale1, float scale2,
        ArrayView<float> values1, ArrayView<float> values2, in StepScalars k, int states,
        ArrayView<float> stage, int local, int tileElements, ref BlockMaxima max)
        where TRule : struct, IUpdateRule
    {
        float s1 = values1[(int)(code1 & 0xFFu)] * scale1;
        float s2 = states == 2 ? values2[(int)(code2 & 0xFFu)] * scale2 : 0f;
        int skippedOne = ElementStep.Run<TRule>(ref p, g, ref s1, ref s2, k) ? 0 : 1;
        stage[local] = s1;
        max.Key1 = Max(max.Key1, BlockScale.Key(s1));
        if (states == 2)
        {
            stage[tileElements + local] = s2;
            max.Key2 = Max(max.Key2, BlockScale.Key(s2));
        }
        return skippedOne;
    }

    private static void Requantize(ArrayView<float> stage, int local, long e, long n, bool whole, float inverse,
        ArrayView<float> search, ArrayView<byte> codes)
    {
        uint c0 = (uint)CodeBook.SearchPosition(search, 8, stage[local] * inverse);
        if (whole)
        {
            uint c1 = (uint)CodeBook.SearchPosition(search, 8, stage[local + 1] * inverse);
            uint c2 = (uint)CodeBook.SearchPosition(search, 8, stage[local + 2] * inverse);
            uint c3 = (uint)CodeBook.SearchPosition(search, 8, stage[local + 3] * inverse);
            codes.Cast<uint>()[e >> 2] = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
            return;
        }
        codes[e] = (byte)c0;
        if (e + 1 < n) codes[e + 1] = (byte)CodeBook.SearchPosition(search, 8, stage[local + 1] * inverse);
        if (e + 2 < n) codes[e + 2] = (byte)CodeBook.SearchPosition(search, 8, stage[local + 2] * inverse);
    }

    private static uint LoadCodes(ArrayView<byte> codes, long e, long n, bool whole)
    {
        // State-owned code buffers start at offset 0, so a whole chunk is always a 4-byte-aligned word.
        if (whole) return codes.Cast<uint>()[e >> 2];
        uint w = codes[e];
        if (e + 1 < n) w |= (uint)codes[e + 1] << 8;
        if (e + 2 < n) w |= (uint)codes[e + 2] << 16;
        return w;
    }

    private static Quad<float> LoadParameters<TP, TPE>(ArrayView<TP> view, long e, long n, bool vector)
        where TP : unmanaged where TPE : struct, IParameterElement<TP>
    {
        var r = default(Quad<float>);
        if (vector)
        {
            var q = view.SubView(0, n & ~3L).Cast<Quad<TP>>()[e >> 2];
            r.X = default(TPE).ToFloat(q.X);
            r.Y = default(TPE).ToFloat(q.Y);
            r.Z = default(TPE).ToFloat(q.Z);
            r.W = default(TPE).ToFloat(q.W);
            return r;
        }
        r.X = default(TPE).ToFloat(view[e]);
        if (e + 1 < n) r.Y = default(TPE).ToFloat(view[e + 1]);
        if (e + 2 < n) r.Z = default(TPE).ToFloat(view[e + 2]);
        if (e + 3 < n) r.W = default(TPE).ToFloat(view[e + 3]);
        return r;
    }

    private static Quad<float> LoadGradients<TG, TGE>(ArrayView<TG> view, long e, long n, bool vector)
        where TG : unmanaged where TGE : struct, IElementConverter<TG>
    {
        var r = default(Quad<float>);
        if (vector)
        {
            var q = view.SubView(0, n & ~3L).Cast<Quad<TG>>()[e >> 2];
            r.X = default(TGE).ToFloat(q.X);
            r.Y = default(TGE).ToFloat(q.Y);
            r.Z = default(TGE).ToFloat(q.Z);
            r.W = default(TGE).ToFloat(q.W);
            return r;
        }
        r.X = default(TGE).ToFloat(view[e]);
        if (e + 1 < n) r.Y = default(TGE).ToFloat(view[e + 1]);
        if (e + 2 < n) r.Z = default(TGE).ToFloat(view[e + 2]);
        if (e + 3 < n) r.W = default(TGE).ToFloat(view[e + 3]);
        return r;
    }

    private static void StoreParameters<TP, TPE>(ArrayView<TP> view, long e, long n, bool vector, Quad<float> p, StepLaunch launch)
        where TP : unmanaged where TPE : struct, IParameterElement<TP>
    {
        bool stochastic = launch.Stochastic != 0;
        // e and the shard's offset are multiples of 4: one Philox block serves the chunk.
        var r = stochastic ? StochasticBits.Chunk(launch.Seed, launch.Step, launch.ElementOffset + e) : default;
        if (vector)
        {
            Quad<TP> q;
            q.X = default(TPE).Round(p.X, stochastic, r.X);
            q.Y = default(TPE).Round(p.Y, stochastic, r.Y);
            q.Z = default(TPE).Round(p.Z, stochastic, r.Z);
            q.W = default(TPE).Round(p.W, stochastic, r.W);
            view.SubView(0, n & ~3L).Cast<Quad<TP>>()[e >> 2] = q;
            return;
        }
        view[e] = default(TPE).Round(p.X, stochastic, r.X);
        if (e + 1 < n) view[e + 1] = default(TPE).Round(p.Y, stochastic, r.Y);
        if (e + 2 < n) view[e + 2] = default(TPE).Round(p.Z, stochastic, r.Z);
        if (e + 3 < n) view[e + 3] = default(TPE).Round(p.W, stochastic, r.W);
    }

    private static TP RoundParameter<TP, TPE>(float p, long index, StepLaunch launch)
        where TP : unmanaged where TPE : struct, IParameterElement<TP>
    {
        bool stochastic = launch.Stochastic != 0;
        uint random = stochastic ? StochasticBits.Of(launch.Seed, launch.Step, launch.ElementOffset + index) : 0u;
        return default(TPE).Round(p, stochastic, random);
    }
}
