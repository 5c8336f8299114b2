namespace Kernels.Optimizers;

/// <summary>
/// CPU reference of <see cref="PercentileClipping"/>, from bitsandbytes' definition (<c>percentile_clipping</c>):
/// record ‖g‖² in a 100-entry history (all entries on step 1, entry step mod 100 after), sort the history, clip =
/// √(sorted[percentile]), scale = clip / ‖g‖ when ‖g‖ &gt; clip, else 1. ‖g‖² is summed in
/// <see cref="GradientNormKernels"/>' documented order (block partials in element order, 256 strided accumulators,
/// a pairwise tree), written out here; a non-finite ‖g‖² is not recorded and gives scale 0.
/// </summary>
public sealed class PercentileClippingReference
{
    private readonly float[] history = new float[PercentileClipping.HistoryLength];

    /// <param name="percentile">0…99.</param>
    public PercentileClippingReference(int percentile)
    {
        if (percentile < 0 || percentile >= PercentileClipping.HistoryLength) throw new ArgumentOutOfRangeException(nameof(percentile));
        Percentile = percentile;
    }

    /// <summary>The rank in the sorted history that sets the clip value.</summary>
    public int Percentile { get; }

    /// <summary>The squared norms remembered.</summary>
    public ReadOnlySpan<float> History => history;

    /// <summary>Per block, Σ g² in f32 in element order.</summary>
    public static float[] SquaredNormPartials(ReadOnlySpan<float> gradients, int blockSize)
    {
        var partials = new float[(gradients.Length + blockSize - 1) / blockSize];
        for (int b = 0; b < partials.Length; b++)
        {
            float sum = 0f;
            for (int i = b * blockSize; i < Math.Min(gradients.Length, (b + 1) * blockSize); i++) sum += gradients[i] * gradients[i];
            partials[b] = sum;
        }
        return partials;
    }

    /// <summary>‖g‖² from the partials: 256 strided accumulators, then a pairwise tree.</summary>
    public static float SquaredNorm(ReadOnlySpan<float> partials)
    {
        var acc = new float[256];
        for (int j = 0; j < partials.Length; j++) acc[j % 256] += partials[j];
        for (int h = 128; h > 0; h /= 2)
            for (int v = 0; v < h; v++) acc[v] += acc[v + h];
        return acc[0];
    }

    /// <summary>Records this step's gradient (given as its partials) and returns (scale, ‖g‖, clip).</summary>
    public (float Scale, float Norm, float Clip) Observe(ReadOnlySpan<float> partials, long step)
    {
        float total = SquaredNorm(partials);
        bool finite = float.IsFinite(total);
        if (finite)
        {
            if (step == 1) Array.Fill(history, total);
            else history[step % PercentileClipping.HistoryLength] = total;
        }
        var sorted = (float[])history.Clone();
        Array.Sort(sorted);
        float norm = MathF.Sqrt(total), clip = MathF.Sqrt(sorted[Percentile]);
        return (!finite ? 0f : norm > clip ? clip / norm : 1f, norm, clip);
    }
}
