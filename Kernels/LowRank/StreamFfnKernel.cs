using ILGPU;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>Launch parameters of the streaming low-rank FFN.</summary>
internal struct FfnParams
{
    public int M, R1, D, R2, H;
    /// <summary>Threads along columns and rows: row block BM = 8·Ty, column chunk W = 8·Tx (≥ R2).</summary>
    public int Tx, Ty;
    public int HasBias2;
    /// <summary>16-byte loads: x rows (R1 % 8), V1 rows (D % 8), U2 rows (R2 % 8), V2 rows (H % 8).</summary>
    public int VecX, VecV1, VecU2, VecV2;
    public int VecY;
}

/// <summary>
/// y = (act(x·V1 + b1)·U2)·V2 + b2 with x M×R1 (rank space), V1 R1×D, U2 D×R2, V2 R2×H (FlashSVD's low-rank FFN,
/// docs/lowrank.md §3, in the v1 order that the FlashSVD numbers favour: rank-space S is kept, the hidden is
/// streamed). A group owns BM rows; for each W-wide chunk of the hidden dimension D it forms h = act(x·V1 + b1) in
/// shared memory and folds h·U2 into the r2-wide S held in registers, so the M×D hidden never exists anywhere; then it
/// sweeps H with y = S·V2 + b2. Every product is the family's 8×8 register tile on f32 shared tiles.
/// </summary>
internal static class StreamFfnKernel
{
    public const int MaxRank = 128;
    private const int MaxRows = 64, MaxWidth = 128, BlockK = 8;

    internal static void Kernel<T, TWord, TAct>(ArrayView<T> x, ArrayView<T> v1, ArrayView<T> b1, ArrayView<T> u2,
        ArrayView<T> v2, ArrayView<T> b2, ArrayView<T> y, FfnParams p)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
        where TAct : struct, IActivation
    {
        var xTile = SharedMemory.Allocate<Float4>(MaxRows * BlockK / 4);
        var fTile = SharedMemory.Allocate<Float4>(MaxWidth * BlockK / 4);
        var hTile = SharedMemory.Allocate<Float4>(MaxWidth * MaxRows / 4); // h chunk [d][row], later S [r2][row]
        var hScalar = hTile.Cast<float>();
        int tid = Group.IdxX, threads = Group.DimX;
        int tx = tid % p.Tx, ty = tid / p.Tx;
        int bm = 8 * p.Ty, w = 8 * p.Tx;
        int blocks = (p.M + bm - 1) / bm;
        int r0 = 4 * ty, r1 = bm / 2 + 4 * ty, c0 = 4 * tx, c1 = w / 2 + 4 * tx;

        for (int block = Grid.IdxX; block < blocks; block += Grid.DimX)
        {
            int m0 = block * bm;
            var sAcc = default(Accumulator8x8);
            for (int d0 = 0; d0 < p.D; d0 += w)
            {
                // h = act(x·V1[:, d0..d0+w) + b1), into shared memory.
                var hAcc = default(Accumulator8x8);
                for (int k0 = 0; k0 < p.R1; k0 += BlockK)
                {
                    SimtStaging.StageRows<T, TWord>(x, p.R1, m0, p.M, k0, p.R1, xTile, bm, p.VecX, tid, threads);
                    SimtStaging.StageColumns<T, TWord>(v1, p.D, k0, p.R1, d0, p.D, fTile, w, p.VecV1, tid, threads);
                    Group.Barrier();
                    for (int kk = 0; kk < BlockK; kk++)
                    {
                        int ra = kk * (bm / 4) + ty, rb = kk * (w / 4) + tx;
                        hAcc.Fma(xTile[ra], xTile[ra + bm / 8], fTile[rb], fTile[rb + w / 8]);
                    }
                    Group.Barrier();
                }
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r0 + 0, c0, c1, hAcc.Low(0), hAcc.High(0));
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r0 + 1, c0, c1, hAcc.Low(1), hAcc.High(1));
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r0 + 2, c0, c1, hAcc.Low(2), hAcc.High(2));
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r0 + 3, c0, c1, hAcc.Low(3), hAcc.High(3));
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r1 + 0, c0, c1, hAcc.Low(4), hAcc.High(4));
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r1 + 1, c0, c1, hAcc.Low(5), hAcc.High(5));
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r1 + 2, c0, c1, hAcc.Low(6), hAcc.High(6));
                PutH<T, TWord, TAct>(hScalar, b1, p.D, bm, d0, r1 + 3, c0, c1, hAcc.Low(7), hAcc.High(7));
                Group.Barrier();

                // S += h·U2[d0..d0+w, :].
                for (int q0 = 0; q0 < w; q0 += BlockK)
                {
                    SimtStaging.StageColumns<T, TWord>(u2, p.R2, d0 + q0, p.D, 0, p.R2, fTile, w, p.VecU2, tid, threads);
                    Group.Barrier();
                    for (int kk = 0; kk < BlockK; kk++)
                    {
                        int ra = (q0 + kk) * (bm / 4) + ty, rb = kk * (w / 4) + tx;
                        sAcc.Fma(hTile[ra], hTile[ra + bm / 8], fTile[rb], fTile[rb + w / 8]);
                    }
                    Group.Barrier();
                }
            }

            // S to shared memory ([r2][row]), then y = S·V2 + b2 over all of H.
            PutS(hScalar, bm, r0 + 0, c0, c1, sAcc.Low(0), sAcc.High(0));
            PutS(hScalar, bm, r0 + 1, c0, c1, sAcc.Low(1), sAcc.High(1));
            PutS(hScalar, bm, r0 + 2, c0, c1, sAcc.Low(2), sAcc.High(2));
            PutS(hScalar, bm, r0 + 3, c0, c1, sAcc.Low(3), sAcc.High(3));
            PutS(hScalar, bm, r1 + 0, c0, c1, sAcc.Low(4), sAcc.High(4));
            PutS(hScalar, bm, r1 + 1, c0, c1, sAcc.Low(5), sAcc.High(5));
            PutS(hScalar, bm, r1 + 2, c0, c1, sAcc.Low(6), sAcc.High(6));
            PutS(hScalar, bm, r1 + 3, c0, c1, sAcc.Low(7), sAcc.High(7));
            Group.Barrier();
            var ep = new SimtOutput { M = p.M, N = p.H, HasBias = p.HasBias2, VecY = p.VecY };
            for (int h0 = 0; h0 < p.H; h0 += w)
            {
                var acc = default(Accumulator8x8);
                for (int q0 = 0; q0 < p.R2; q0 += BlockK)
                {
                    SimtStaging.StageColumns<T, TWord>(v2, p.H, q0, p.R2, h0, p.H, fTile, w, p.VecV2, tid, threads);
                    Group.Barrier();
                    for (int kk = 0; kk < BlockK; kk++)
                    {
                        int ra = (q0 + kk) * (bm / 4) + ty, rb = kk * (w / 4) + tx;
                        acc.Fma(hTile[ra], hTile[ra + bm / 8], fTile[rb], fTile[rb + w / 8]);
                    }
                    Group.Barrier();
                }
                int n0c = h0 + c0, n1c = h0 + c1;
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r0 + 0, n0c, n1c, acc.Low(0), acc.High(0));
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r0 + 1, n0c, n1c, acc.Low(1), acc.High(1));
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r0 + 2, n0c, n1c, acc.Low(2), acc.High(2));
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r0 + 3, n0c, n1c, acc.Low(3), acc.High(3));
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r1 + 0, n0c, n1c, acc.Low(4), acc.High(4));
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r1 + 1, n0c, n1c, acc.Low(5), acc.High(5));
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r1 + 2, n0c, n1c, acc.Low(6), acc.High(6));
                SimtStaging.PutY<T, TWord>(y, b2, ep, m0 + r1 + 3, n0c, n1c, acc.Low(7), acc.High(7));
            }
            Group.Barrier(); // the next row block overwrites S
        }
    }

    /// <summary>h[d − d0][row] = act(acc + b1[d]), zero past D (so padded columns add nothing to S).</summary>
    private static void PutH<T, TWord, TAct>(ArrayView<float> h, ArrayView<T> b1, int dims, int bm, int d0, int row, int c0, int c1,
        Float4 lo, Float4 hi)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
        where TAct : struct, IActivation
    {
        h[(c0 + 0) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c0 + 0, lo.X);
        h[(c0 + 1) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c0 + 1, lo.Y);
        h[(c0 + 2) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c0 + 2, lo.Z);
        h[(c0 + 3) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c0 + 3, lo.W);
        h[(c1 + 0) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c1 + 0, hi.X);
        h[(c1 + 1) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c1 + 1, hi.Y);
        h[(c1 + 2) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c1 + 2, hi.Z);
        h[(c1 + 3) * bm + row] = Act<T, TWord, TAct>(b1, dims, d0 + c1 + 3, hi.W);
    }

    private static float Act<T, TWord, TAct>(ArrayView<T> b1, int dims, int d, float value)
        where T : unmanaged
        where TWord : struct, IHalfWord<T>
        where TAct : struct, IActivation =>
        d < dims ? default(TAct).Apply(value + SimtStaging.Load<T, TWord>(b1, d)) : 0f;

    private static void PutS(ArrayView<float> s, int bm, int row, int c0, int c1, Float4 lo, Float4 hi)
    {
        s[(c0 + 0) * bm + row] = lo.X;
        s[(c0 + 1) * bm + row] = lo.Y;
        s[(c0 + 2) * bm + row] = lo.Z;
        s[(c0 + 3) * bm + row] = lo.W;
        s[(c1 + 0) * bm + row] = hi.X;
        s[(c1 + 1) * bm + row] = hi.Y;
        s[(c1 + 2) * bm + row] = hi.Z;
        s[(c1 + 3) * bm + row] = hi.W;
    }
}
