namespace Kernels.Engine;

/// <summary>
/// Finishes the output: receives each accumulated f32 value once. Implement as a struct with the output views
/// (store with bias, split-K partials, LoRA expand...). Compiled per epilogue type, so calls are inlined.
/// </summary>
/// <remarks>
/// After the mainloop every thread calls <see cref="Store"/> for each output element its mma fragments hold that lies
/// inside the problem (<c>m &lt; M</c>, <c>n &lt; N</c>); no element is passed twice for a given split, and calls are
/// not convergent (do not use barriers or shuffles inside). <c>value</c> = Σ over the split's K range of
/// W[m, k]·X[n, k], in f32. With split-K the engine calls each split's epilogue with its <c>split</c> index and the
/// partial sum; <see cref="SplitKReduction"/> then sums the partials in split order (deterministically) and calls the
/// final epilogue with split 0.
/// </remarks>
public interface ITileEpilogue
{
    /// <summary>Consumes the f32 result for weight row <paramref name="m"/> and token <paramref name="n"/>.</summary>
    void Store(int split, int m, int n, float value);
}
