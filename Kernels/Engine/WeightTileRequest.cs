using ILGPU;

namespace Kernels.Engine;

/// <summary>
/// What the engine asks a <see cref="IWeightTileProducer"/> to produce: the weight tile rows
/// [<see cref="Row0"/>, <see cref="Row0"/> + <see cref="Rows"/>) × columns [<see cref="K0"/>, <see cref="K0"/> + 64),
/// written in <see cref="SwizzledTile"/> layout at <see cref="TileByteOffset"/> of <see cref="Shared"/>.
/// </summary>
public readonly struct WeightTileRequest
{
    /// <summary>Creates a request (the engine does this).</summary>
    public WeightTileRequest(ArrayView<uint> shared, int tileByteOffset, int row0, int rows, int k0, int kTile, int thread)
    {
        Shared = shared;
        TileByteOffset = tileByteOffset;
        Row0 = row0;
        Rows = rows;
        K0 = k0;
        KTile = kTile;
        Thread = thread;
    }

    /// <summary>The group's whole dynamic shared memory as 32-bit words (cast it for 16-bit or 128-bit stores).</summary>
    public ArrayView<uint> Shared { get; }

    /// <summary>Byte offset of the tile in <see cref="Shared"/> (a multiple of 128).</summary>
    public int TileByteOffset { get; }

    /// <summary>First weight row (M index) of the tile; a multiple of <see cref="Rows"/>.</summary>
    public int Row0 { get; }

    /// <summary>Rows of the tile (the tile shape's TileM: 128 or 64).</summary>
    public int Rows { get; }

    /// <summary>First weight column (K index) of the tile; a multiple of 64.</summary>
    public int K0 { get; }

    /// <summary>Index of the K tile (<c>K0 / 64</c>).</summary>
    public int KTile { get; }

    /// <summary>The calling thread's index in the group, 0..127.</summary>
    public int Thread { get; }

    /// <summary>Half-word index, in <see cref="Shared"/> viewed as 16-bit, of tile element (row, column).</summary>
    public int HalfIndex(int row, int column) => (TileByteOffset >> 1) + SwizzledTile.HalfIndex(row, column);
}
