namespace Kernels.Engine;

/// <summary>
/// Fills the shared-memory weight tile of one K step. This is where families differ (dense copy, Tiled-CSL scatter,
/// SpQR decode, block-wise dequantize); the engine does everything else. Implement it as a struct holding the
/// producer's views and scalars as fields; the engine is compiled per producer type, so calls are inlined.
/// </summary>
/// <remarks>
/// <para><b>Contract.</b> For each K tile the engine calls <see cref="Begin"/> and then <see cref="End"/>, on all 128
/// threads of the group (convergently: every thread calls, so barriers and shuffles inside are allowed). Without an
/// End phase, <see cref="Begin"/> of tile t runs <see cref="ITileShape.Stages"/> − 1 tiles ahead, right after the barrier
/// that follows the compute of tile t − Stages (whose buffer it fills), and its <c>cp.async</c> copies join the
/// engine's commit group for tile t. With an End phase (<see cref="HasEndPhase"/> true) the producer runs one tile
/// ahead: <see cref="Begin"/> of tile t before the compute of tile t − 1, then a group barrier, then
/// <see cref="End"/> of tile t; <see cref="End"/> must not read <c>cp.async</c> copies of <see cref="Begin"/> (the
/// engine does not wait for them there). The tile is read with <c>ldmatrix</c> after the engine's
/// <c>cp.async.wait_group(Stages − 2)</c> and group barrier at the start of the iteration that multiplies it.</para>
/// <para><b>What to write.</b> Every 16-bit element of the <c>Rows</c>×64 tile at
/// <see cref="WeightTileRequest.TileByteOffset"/>, in <see cref="SwizzledTile"/> layout, as f16 or bf16 bits matching
/// the engine's mma kind: weight element (Row0 + r, K0 + c) at half index
/// <see cref="WeightTileRequest.HalfIndex(int, int)"/>(r, c). Elements outside the matrix (row ≥ M, column ≥ K) must
/// be written as zero (the activation tile is zero there, and 0·NaN would poison the sum). Write nothing else in
/// shared memory.</para>
/// <para><b>Phases.</b> <see cref="Begin"/> runs before the compute of earlier tiles: issue global loads there
/// (<c>cp.async</c> straight into the tile, or loads into the producer's own fields, which the engine keeps in
/// registers across the compute), and zero-fill if needed. <see cref="End"/> runs after every thread has finished
/// that compute and after a barrier (when <see cref="HasEndPhase"/>), so shared stores made in <see cref="Begin"/>
/// by any thread are visible: scatter or decode there (Flash-LLM's order). A dense producer needs only
/// <see cref="Begin"/>.</para>
/// </remarks>
public interface IWeightTileProducer
{
    /// <summary>True when <see cref="End"/> does work (the engine then adds the barrier before it); a constant.</summary>
    bool HasEndPhase { get; }

    /// <summary>First phase for a tile (before the compute of earlier tiles).</summary>
    void Begin(in WeightTileRequest request);

    /// <summary>Second phase for a tile (after the compute of the previous stage and a barrier).</summary>
    void End(in WeightTileRequest request);
}
