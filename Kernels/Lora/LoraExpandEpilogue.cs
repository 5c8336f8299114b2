using ILGPU;
using Kernels.Engine;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// The fused LoRA forward's tile-engine epilogue (LoRAFusion's <c>xw_sb</c> finish): each output element of the base
/// GEMM, still in registers, gets its bias and α_a·Σ_j S[t, j]·B_a[o, j] added before the one store of Y[t, o], so
/// neither X·Wᵀ nor S·Bᵀ is ever written to memory. Engine coordinates: m = output feature o, n = token t. The
/// adapter comes from <typeparamref name="TMap"/> per token (one adapter, or a multi-adapter batch where tiles may
/// straddle segments — no padding). The engine's contract hands the epilogue one finished f32 value at a time, so the
/// rank-r dot runs on CUDA cores (r ≤ 128 FMAs per output against K in the mainloop) rather than seeding the
/// accumulator on tensor cores as LoRAFusion does.
/// </summary>
internal readonly struct LoraExpandEpilogue<T, TConvert, TMap> : ITileEpilogue
    where T : unmanaged where TConvert : struct, IElementConverter<T> where TMap : struct, ILoraAdapterMap
{
    public readonly ArrayView<T> Y;
    public readonly ArrayView<T> Bias;
    public readonly int HasBias;
    public readonly int OutFeatures;
    public readonly ArrayView<float> S;
    public readonly int SStride;
    public readonly ArrayView<T> B;
    public readonly TMap Map;

    public LoraExpandEpilogue(ArrayView<T> y, ArrayView<T>? bias, int outFeatures, ArrayView<float> s, int sStride, ArrayView<T> b, TMap map)
    {
        Y = y;
        Bias = bias ?? y;
        HasBias = bias.HasValue ? 1 : 0;
        OutFeatures = outFeatures;
        S = s;
        SStride = sStride;
        B = b;
        Map = map;
    }

    public void Store(int split, int m, int n, float value)
    {
        float v = HasBias != 0 ? value + default(TConvert).ToFloat(Bias[m]) : value;
        int a = Map.AdapterOf(n);
        if (a >= 0)
        {
            int rank = Map.Rank(a);
            long s0 = (long)n * SStride, b0 = Map.BOffset(a) + (long)m * rank;
            float lora = 0f;
            for (int j = 0; j < rank; j++) lora += S[s0 + j] * default(TConvert).ToFloat(B[b0 + j]);
            v += Map.Scale(a) * lora;
        }
        Y[(long)n * OutFeatures + m] = default(TConvert).FromFloat(v);
    }
}

/// <summary>
/// The dX epilogue of the LoRA backward (LoRAFusion's <c>dyw_dsa</c>): dX[t, k] = (dY·W)[t, k] + mask(t, k)·
/// Σ_j dS[t, j]·A[j, k] / (1 − p), with the mask regenerated from the forward's seed. Engine coordinates: m = input
/// feature k, n = token t.
/// </summary>
internal readonly struct LoraDxEpilogue<T, TConvert> : ITileEpilogue
    where T : unmanaged where TConvert : struct, IElementConverter<T>
{
    public readonly ArrayView<T> Dx;
    public readonly int InFeatures;
    public readonly ArrayView<float> Ds;
    public readonly int Rank;
    public readonly ArrayView<T> A;
    public readonly LoraDropout Dropout;

    public LoraDxEpilogue(ArrayView<T> dx, int inFeatures, ArrayView<float> ds, int rank, ArrayView<T> a, LoraDropout dropout)
    {
        Dx = dx;
        InFeatures = inFeatures;
        Ds = ds;
        Rank = rank;
        A = a;
        Dropout = dropout;
    }

    public void Store(int split, int m, int n, float value)
    {
        long element = (long)n * InFeatures + m;
        float factor = Dropout.Factor(element);
        float v = value;
        if (factor != 0f)
        {
            long d0 = (long)n * Rank;
            float lora = 0f;
            for (int j = 0; j < Rank; j++) lora += Ds[d0 + j] * default(TConvert).ToFloat(A[(long)j * InFeatures + m]);
            v += factor * lora;
        }
        Dx[element] = default(TConvert).FromFloat(v);
    }
}
