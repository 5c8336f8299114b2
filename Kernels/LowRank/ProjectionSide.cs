namespace Kernels.LowRank;

/// <summary>
/// Which singular subspace of an m×n gradient G a projector spans (GaLore's "std" rule picks the side that compresses
/// the smaller dimension: <see cref="GaLore.SideFor"/>).
/// </summary>
public enum ProjectionSide
{
    /// <summary>P is m×r with orthonormal columns (top left singular vectors, U[:, :r]); R = Pᵀ·G is r×n.</summary>
    Left,

    /// <summary>Q is r×n with orthonormal rows (top right singular vectors, Vh[:r]); R = G·Qᵀ is m×r.</summary>
    Right,
}
