namespace Kernels.LowRank;

/// <summary>The activation of <see cref="LowRankProduct.StreamFfn{T}"/>.</summary>
public enum FfnActivation
{
    /// <summary>GELU, tanh form: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (PyTorch approximate="tanh").</summary>
    Gelu,

    /// <summary>SiLU (swish): x·σ(x).</summary>
    Silu,
}

/// <summary>An activation as a struct type parameter (specialized at compile time).</summary>
internal interface IActivation
{
    float Apply(float x);
}

internal readonly struct GeluTanh : IActivation
{
    public float Apply(float x) => 0.5f * x * (1f + MathF.Tanh(0.7978845608f * (x + 0.044715f * x * x * x)));
}

internal readonly struct Silu : IActivation
{
    public float Apply(float x) => x / (1f + MathF.Exp(-x));
}
