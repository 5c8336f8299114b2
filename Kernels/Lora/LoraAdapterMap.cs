using ILGPU;

namespace Kernels.Lora;

/// <summary>
/// Kernel-side answer to "which adapter does row m use, and where are its factors": one implementation for a single
/// adapter (every row, offsets 0) and one for a pooled <see cref="LoraAdapterSet{T}"/> with a per-row table. Kernels
/// are generic over it (a struct), so the single-adapter path pays no lookups.
/// </summary>
internal interface ILoraAdapterMap
{
    /// <summary>The adapter of token row <paramref name="row"/>, or −1 for none.</summary>
    int AdapterOf(int row);

    /// <summary>Rank of adapter <paramref name="adapter"/>.</summary>
    int Rank(int adapter);

    /// <summary>Scale α of adapter <paramref name="adapter"/>.</summary>
    float Scale(int adapter);

    /// <summary>Offset of the adapter's A (r×K) in the A view.</summary>
    long AOffset(int adapter);

    /// <summary>Offset of the adapter's B (N×r) in the B view.</summary>
    long BOffset(int adapter);
}

/// <summary>One adapter for every row; A and B start at element 0 of their views.</summary>
internal readonly struct SingleLoraAdapter : ILoraAdapterMap
{
    public readonly int R;
    public readonly float Alpha;

    public SingleLoraAdapter(int rank, float alpha)
    {
        R = rank;
        Alpha = alpha;
    }

    public int AdapterOf(int row) => 0;
    public int Rank(int adapter) => R;
    public float Scale(int adapter) => Alpha;
    public long AOffset(int adapter) => 0;
    public long BOffset(int adapter) => 0;
}

/// <summary>Adapters in a pool, looked up per row from a <see cref="LoraBatch"/> table.</summary>
internal readonly struct PooledLoraAdapters : ILoraAdapterMap
{
    public readonly ArrayView<int> RowAdapters;
    public readonly ArrayView<int> Ranks;
    public readonly ArrayView<float> Scales;
    public readonly ArrayView<long> AOffsets;
    public readonly ArrayView<long> BOffsets;

    public PooledLoraAdapters(ArrayView<int> rowAdapters, ArrayView<int> ranks, ArrayView<float> scales,
        ArrayView<long> aOffsets, ArrayView<long> bOffsets)
    {
        RowAdapters = rowAdapters;
        Ranks = ranks;
        Scales = scales;
        AOffsets = aOffsets;
        BOffsets = bOffsets;
    }

    public int AdapterOf(int row) => RowAdapters[row];
    public int Rank(int adapter) => Ranks[adapter];
    public float Scale(int adapter) => Scales[adapter];
    public long AOffset(int adapter) => AOffsets[adapter];
    public long BOffset(int adapter) => BOffsets[adapter];
}
