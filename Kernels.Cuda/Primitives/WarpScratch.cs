using ILGPU;

namespace Kernels.Cuda.Primitives;

/// <summary>
/// Exchange space for the CPU-accelerator emulation of the warp primitives: the last <see cref="WordsPerWarp"/> words
/// per warp of the group's dynamic shared memory, warp w using the w-th region from the end. On the CPU a warp's
/// lanes are OS threads, and a warp shuffle costs two thread barriers; staging operands here costs two barriers per
/// primitive instead of one pair per shuffled value (about 20× fewer for <c>mma</c>). On a GPU the primitives never
/// touch it, so kernels reserve it only on the CPU: add <see cref="BytesFor"/> to the dynamic shared memory request.
/// </summary>
public readonly struct WarpScratch
{
    /// <summary>32-bit words each warp needs (32 lanes × 8 words).</summary>
    public const int WordsPerWarp = 256;

    /// <summary>The group's whole dynamic shared memory.</summary>
    public readonly ArrayView<uint> Shared;

    /// <summary>Uses the end of <paramref name="shared"/> (the whole dynamic shared memory) as scratch.</summary>
    public WarpScratch(ArrayView<uint> shared) => Shared = shared;

    /// <summary>Extra dynamic shared-memory bytes a group of <paramref name="warps"/> warps needs: 0 on a GPU.</summary>
    public static int BytesFor(bool isCuda, int warps) => isCuda ? 0 : warps * WordsPerWarp * 4;

    /// <summary>Word index, in <see cref="Shared"/>, of this warp's region (CPU path only).</summary>
    internal int WarpBase => (int)Shared.Length - (Warp.WarpIdx + 1) * WordsPerWarp;
}
