namespace Kernels.Engine;

/// <summary>
/// Fixed facts of the tile engine: every group is 4 warps of 32 lanes (128 threads) and the K step is 64 columns.
/// Each warp owns a 32×16 (M×N) piece of the output tile (2×2 mma.m16n8k16 fragments), or 64×32 for
/// <see cref="LargeTile"/>.
/// </summary>
public static class TileEngineConstants
{
    /// <summary>Threads per group (4 warps × 32 lanes).</summary>
    public const int Threads = 128;
    /// <summary>Warps per group.</summary>
    public const int Warps = 4;
    /// <summary>Columns (K) of one weight/activation tile: 64 halves = one 128-byte shared-memory row.</summary>
    public const int TileK = 64;
    /// <summary>Bytes of one tile row in shared memory (TileK 16-bit elements).</summary>
    public const int RowBytes = TileK * 2;
    /// <summary>Output rows (M) one warp accumulates in the skinny and wide shapes.</summary>
    public const int WarpTileM = 32;
    /// <summary>Output columns (N, tokens) one warp accumulates in the skinny and wide shapes.</summary>
    public const int WarpTileN = 16;
}

/// <summary>
/// How the 4 warps of a group tile the output: <see cref="WarpsM"/> × <see cref="WarpsN"/> = 4, giving a group tile
/// of <c>WarpTileM·WarpsM</c> weight rows × <c>WarpTileN·WarpsN</c> tokens. Implemented by empty structs so the engine is
/// specialized per shape at compile time.
/// </summary>
public interface ITileShape
{
    /// <summary>Warps along M (weight rows).</summary>
    int WarpsM { get; }
    /// <summary>Warps along N (tokens).</summary>
    int WarpsN { get; }

    /// <summary>Output rows per warp: 32 (<see cref="WarpTile32x16{TMma}"/>) or 64 (<see cref="WarpTile64x32{TMma}"/>).</summary>
    int WarpTileM { get; }

    /// <summary>Output columns per warp: 16 or 32 (paired with <see cref="WarpTileM"/> 32 or 64).</summary>
    int WarpTileN { get; }

    /// <summary>
    /// Pipeline stages (shared-memory buffers of one weight and one activation tile each, ≥ 3): the engine keeps
    /// <c>Stages − 1</c> K tiles in flight while it multiplies one (CUTLASS's multistage mainloop). Chosen per shape as the
    /// most that still fits the shape's occupancy target on an H200 (KernelCatalog).
    /// </summary>
    int Stages { get; }
}

/// <summary>
/// Few tokens (N ≤ 16 per tile): 128 weight rows × 16 tokens per group; the M-tile equals a Tiled-CSL tile's 128 rows.
/// Three stages of 18 KiB (54 KiB): four groups per H200 multiprocessor; a fourth stage would leave three.
/// </summary>
public readonly struct SkinnyTile : ITileShape
{
    /// <inheritdoc />
    public int Stages => 3;
    /// <inheritdoc />
    public int WarpTileM => 32;
    /// <inheritdoc />
    public int WarpTileN => 16;
    /// <inheritdoc />
    public int WarpsM => 4;
    /// <inheritdoc />
    public int WarpsN => 1;
}

/// <summary>
/// Many tokens: 64 weight rows × 32 tokens per group (64 divides a Tiled-CSL tile's 128 rows). Four stages of 12 KiB
/// (48 KiB): four groups per H200 multiprocessor.
/// </summary>
public readonly struct WideTile : ITileShape
{
    /// <inheritdoc />
    public int Stages => 4;
    /// <inheritdoc />
    public int WarpTileM => 32;
    /// <inheritdoc />
    public int WarpTileN => 16;
    /// <inheritdoc />
    public int WarpsM => 2;
    /// <inheritdoc />
    public int WarpsN => 2;
}

/// <summary>
/// Many tokens, compute-bound: 128 weight rows × 64 tokens per group (2×2 warps of 64×32), half the shared-memory and
/// L2 traffic per multiply-add of <see cref="WideTile"/>; the M-tile equals a Tiled-CSL tile's 128 rows. Four stages of
/// 24 KiB (96 KiB): two groups per H200 multiprocessor.
/// </summary>
public readonly struct LargeTile : ITileShape
{
    /// <inheritdoc />
    public int Stages => 4;
    /// <inheritdoc />
    public int WarpTileM => 64;
    /// <inheritdoc />
    public int WarpTileN => 32;
    /// <inheritdoc />
    public int WarpsM => 2;
    /// <inheritdoc />
    public int WarpsN => 2;
}

/// <summary>Host-side sizes of a tile shape.</summary>
public static class TileShapes
{
    /// <summary>Weight rows per group tile.</summary>
    public static int TileM<TShape>() where TShape : struct, ITileShape => default(TShape).WarpsM * default(TShape).WarpTileM;

    /// <summary>Tokens per group tile.</summary>
    public static int TileN<TShape>() where TShape : struct, ITileShape => default(TShape).WarpsN * default(TShape).WarpTileN;

    /// <summary>Bytes of one pipeline stage: the weight tile followed by the activation tile.</summary>
    public static int StageBytes<TShape>() where TShape : struct, ITileShape =>
        (TileM<TShape>() + TileN<TShape>()) * TileEngineConstants.RowBytes;

    /// <summary>Dynamic shared memory of the engine kernel: <see cref="ITileShape.Stages"/> stages.</summary>
    public static int SharedBytes<TShape>() where TShape : struct, ITileShape => default(TShape).Stages * StageBytes<TShape>();
}
