using ILGPU;
using Kernels.Engine;
using Kernels.Tensors;

namespace Kernels.LowRank;

/// <summary>
/// Engine epilogue of StreamMatmul's first stage, whose weights are Vᵀ (rank rows) and whose tokens are rows of x:
/// T[row, rank] = (x·V)[row, rank]·s[rank] in f32, rounded (RNE) to the 16-bit mma input type and written where
/// <typeparamref name="TLayout"/> puts it — device memory for the two-stage path, the one-pass kernel's shared tiles.
/// Ranks ≥ r (the one-pass kernel's padding up to a multiple of 16) get zeros.
/// </summary>
internal readonly struct ScaledRankEpilogue<T, TWord, TLayout> : ITileEpilogue
    where T : unmanaged
    where TWord : struct, IHalfWord<T>
    where TLayout : struct, IRankLayout
{
    public readonly ArrayView<T> Target;
    public readonly ArrayView<float> Scale;
    public readonly int R;

    public ScaledRankEpilogue(ArrayView<T> target, ArrayView<float> scale, int r)
    {
        Target = target;
        Scale = scale;
        R = r;
    }

    public void Store(int split, int m, int n, float value) =>
        Target[default(TLayout).Index(n, m, R)] = default(TWord).Narrow(m < R ? value * Scale[m] : 0f);
}

/// <summary>Where element (row, rank) of the M×r intermediate T lives.</summary>
internal interface IRankLayout
{
    /// <summary>Element index of T[<paramref name="row"/>, <paramref name="rank"/>] for rank r.</summary>
    long Index(int row, int rank, int r);
}

/// <summary>T row-major M×r in device memory (the two-stage path's intermediate, the second stage's activations).</summary>
internal readonly struct RankMajorRows : IRankLayout
{
    public long Index(int row, int rank, int r) => (long)row * r + rank;
}

/// <summary>
/// T of one 64-row block in swizzled 64×64 shared tiles, ranks 64·t.. in tile t — exactly the engine's activation layout,
/// so the one-pass kernel's second stage reads it with <c>ldmatrix</c> like any activation tile.
/// </summary>
internal readonly struct SwizzledRankTiles : IRankLayout
{
    public long Index(int row, int rank, int r) =>
        (rank >> 6) * StreamMatmulKernel.BlockRows * TileEngineConstants.TileK + SwizzledTile.HalfIndex(row, rank & 63);
}
