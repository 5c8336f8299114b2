namespace Kernels.Lora;

/// <summary>
/// How <see cref="Lora.BackwardDsDb{T}"/> runs for one shape: the one-pass kernel (<see cref="LoraDsDbSweep"/>, dY
/// read once) or the two passes (<see cref="LoraRowProduct"/> for dS, <see cref="LoraColumnProduct"/> for dB, dY read
/// twice), whichever moves fewer bytes. The sweep's price is its partial planes: dB is reduced over token chunks of
/// <see cref="ChunkRows"/> rows (Chunks·N·r f32 written and read back when Chunks &gt; 1) and dS over
/// <see cref="Splits"/> ranges of N (Splits·M·r f32 written and read back when Splits &gt; 1), and every chunk reads B
/// again. It wins while a chunk holds many rows per rank (small r, the usual LoRA). At M = 8192, N = 4096, f16, on 132
/// SMs (bytes per the model below):
/// r = 16: 256-row chunks, 32 chunks × 9 ranges; the sweep moves 103.0 MB (dY 67.1, dB planes 16.8, dS planes 9.4,
/// S 4.7, B re-reads 4.2, dS and dB 0.8) against 144.0 MB for two passes (dY 134.2, split-M dB planes 8.4);
/// r = 8: 85.3 MB against 139.1 MB; r = 1: 69.4 MB against 134.8 MB.
/// r = 32 (128-row chunks): 168.3 MB against 153.9 MB, and r = 64: 424.7 MB against 173.5 MB — the dB planes (67 MB,
/// 268 MB) outweigh the second dY read, so two passes are kept there. With one chunk (M ≤ chunk rows) there are no
/// dB planes and the sweep wins at every rank.
/// </summary>
internal readonly record struct LoraBackwardPlan(bool Fused, int ChunkRows, int Chunks, int Splits, int TilesPerSplit,
    double FusedBytes, double TwoPassBytes)
{
    /// <summary>dS accumulators a sweep group keeps in shared memory (rows·r ≤ this).</summary>
    public const int AccumulatorFloats = 4096;

    /// <summary>
    /// The plan for dY M×N of <paramref name="elementBytes"/>-byte elements and rank r, with about
    /// <paramref name="targetGroups"/> groups wanted in flight (chunks × splits).
    /// </summary>
    public static LoraBackwardPlan For(int m, int n, int r, int elementBytes, int targetGroups)
    {
        int chunkRows = SweepChunkRows(r);
        int chunks = (m + chunkRows - 1) / chunkRows;
        int tiles = (n + LoraDsDbSweep.TileColumns - 1) / LoraDsDbSweep.TileColumns;
        // Ranges of N fill the device when there are few chunks, but each adds an M×r dS plane written and read
        // back: at most a quarter of dY's bytes go to them (splits·M·r·8 ≤ M·N·sz / 4).
        int maxSplits = (int)Math.Max(1, Math.Min(tiles, (long)n * elementBytes / (32L * r)));
        int wanted = Math.Clamp((targetGroups + chunks - 1) / chunks, 1, maxSplits);
        int perSplit = (tiles + wanted - 1) / wanted;
        int splits = (tiles + perSplit - 1) / perSplit;

        double sz = elementBytes, mr = (double)m * r, nr = (double)n * r, dy = (double)m * n * sz;
        double fused = dy + chunks * nr * sz + splits * mr * 4                 // dY once, B per chunk, S per split
                       + (splits > 1 ? 2.0 * splits * mr * 4 : 0) + mr * 4     // dS planes, dS
                       + (chunks > 1 ? 2.0 * chunks * nr * 4 : 0) + nr * 4;    // dB planes, dB
        int columnChunks = LoraColumnProduct.Chunks(m);
        double twoPass = 2 * dy + nr * sz + mr * 4 + mr * 4                    // dY twice, B, S, dS
                         + (columnChunks > 1 ? 2.0 * columnChunks * nr * 4 : 0) + nr * 4;
        return new LoraBackwardPlan(fused <= twoPass, chunkRows, chunks, splits, perSplit, fused, twoPass);
    }

    /// <summary>Rows a sweep group owns: as many as its dS accumulators hold, a multiple of the row block, ≤ 512.</summary>
    public static int SweepChunkRows(int r)
    {
        int rows = AccumulatorFloats / r / LoraDsDbSweep.BlockRows * LoraDsDbSweep.BlockRows;
        return Math.Clamp(rows, LoraDsDbSweep.BlockRows, LoraColumnProduct.ChunkRows);
    }
}
