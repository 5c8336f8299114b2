namespace Kernels.Cuda.Primitives;

/// <summary>
/// Sixteen bytes as four 32-bit words: the unit of 16-byte vector loads and stores (<c>ld.global.v4.b32</c>,
/// <c>st.shared.v4.b32</c>) and of <c>cp.async</c> copies. ILGPU emits vector instructions for loads and stores of
/// this struct at optimization level O2.
/// </summary>
public struct UInt4
{
    /// <summary>Bytes 0..3.</summary>
    public uint X;
    /// <summary>Bytes 4..7.</summary>
    public uint Y;
    /// <summary>Bytes 8..11.</summary>
    public uint Z;
    /// <summary>Bytes 12..15.</summary>
    public uint W;

    /// <summary>Creates a vector from its four words.</summary>
    public UInt4(uint x, uint y, uint z, uint w)
    {
        X = x; Y = y; Z = z; W = w;
    }
}
