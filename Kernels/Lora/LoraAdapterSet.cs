using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// One LoRA adapter on the host, in PEFT's layout: <see cref="A"/> is r×K (lora_A.weight), <see cref="B"/> is N×r
/// (lora_B.weight), and <see cref="Scale"/> is α = lora_alpha / r.
/// </summary>
/// <param name="Rank">r, 1…<see cref="LoraAdapterSet{T}.MaxSupportedRank"/>.</param>
/// <param name="Scale">α (PEFT's <c>lora_alpha / r</c>; pass <c>lora_alpha / sqrt(r)</c> for rsLoRA).</param>
/// <param name="A">r×K row-major.</param>
/// <param name="B">N×r row-major.</param>
public sealed record LoraAdapter<T>(int Rank, float Scale, T[] A, T[] B) where T : unmanaged;

/// <summary>
/// Several LoRA adapters of one layer (same K in-features and N out-features, each with its own rank and scale) held
/// in one device pool, for multi-adapter batches (Punica SGMV/BGMV, S-LoRA): the A factors packed one after another
/// (adapter i at <see cref="AOffset"/>(i), r_i×K), the B factors likewise (N×r_i), and per-adapter rank, scale and
/// offsets on the device for the kernels. Validated on construction; immutable afterwards.
/// <para>Element types: f16 and bf16 for every operation; an f32 set (<c>LoraAdapterSet&lt;float&gt;</c>) serves
/// <see cref="Lora.Bgmv{T}"/> only — the tensor-core <see cref="Lora.SegmentedForward{T}"/> refuses it with an
/// <see cref="ArgumentException"/> naming <c>x</c>.</para>
/// </summary>
public sealed class LoraAdapterSet<T> : IDisposable where T : unmanaged
{
    /// <summary>Largest rank an adapter may have.</summary>
    public const int MaxSupportedRank = 128;

    private readonly int[] ranks;
    private readonly float[] scales;
    private readonly long[] aOffsets;
    private readonly long[] bOffsets;
    private readonly DeviceTensor<T> aPool;
    private readonly DeviceTensor<T> bPool;
    private readonly DeviceTensor<int> rankTable;
    private readonly DeviceTensor<float> scaleTable;
    private readonly DeviceTensor<long> aOffsetTable;
    private readonly DeviceTensor<long> bOffsetTable;

    private LoraAdapterSet(ComputeDevice device, int k, int n, int[] ranks, float[] scales, long[] aOffsets, long[] bOffsets,
        DeviceTensor<T> aPool, DeviceTensor<T> bPool)
    {
        Device = device;
        InFeatures = k;
        OutFeatures = n;
        this.ranks = ranks;
        this.scales = scales;
        this.aOffsets = aOffsets;
        this.bOffsets = bOffsets;
        this.aPool = aPool;
        this.bPool = bPool;
        MaxRank = ranks.Max();
        rankTable = device.Upload<int>(ranks);
        scaleTable = device.Upload<float>(scales);
        aOffsetTable = device.Upload<long>(aOffsets);
        bOffsetTable = device.Upload<long>(bOffsets);
    }

    /// <summary>
    /// Validates the adapters and uploads them into one pool on <paramref name="device"/> (synchronous: the copies
    /// finish before this returns).
    /// </summary>
    /// <param name="device">Where the pool lives.</param>
    /// <param name="inFeatures">K, the columns of every A.</param>
    /// <param name="outFeatures">N, the rows of every B.</param>
    /// <param name="adapters">At least one adapter; adapter ids in batches are indices into this list.</param>
    /// <exception cref="ArgumentException">An adapter's rank, factor lengths or scale is invalid.</exception>
    public static LoraAdapterSet<T> Create(ComputeDevice device, int inFeatures, int outFeatures, IReadOnlyList<LoraAdapter<T>> adapters)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(adapters);
        Require.Supported<T>(nameof(adapters));
        ArgumentOutOfRangeException.ThrowIfLessThan(inFeatures, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(outFeatures, 1);
        if (adapters.Count == 0) throw new ArgumentException("An adapter set needs at least one adapter.", nameof(adapters));
        var ranks = new int[adapters.Count];
        var scales = new float[adapters.Count];
        var aOffsets = new long[adapters.Count];
        var bOffsets = new long[adapters.Count];
        long aTotal = 0, bTotal = 0;
        for (int i = 0; i < adapters.Count; i++)
        {
            var ad = adapters[i] ?? throw new ArgumentException($"Adapter {i} is null.", nameof(adapters));
            if (ad.Rank < 1 || ad.Rank > MaxSupportedRank)
                throw new ArgumentOutOfRangeException(nameof(adapters), $"Adapter {i} has rank {ad.Rank}; ranks must be 1…{MaxSupportedRank}.");
            if (ad.A is null || ad.A.LongLength != (long)ad.Rank * inFeatures)
                throw new ArgumentException($"Adapter {i}: A has {ad.A?.LongLength ?? 0} elements but rank {ad.Rank} × K {inFeatures} needs {(long)ad.Rank * inFeatures}.", nameof(adapters));
            if (ad.B is null || ad.B.LongLength != (long)outFeatures * ad.Rank)
                throw new ArgumentException($"Adapter {i}: B has {ad.B?.LongLength ?? 0} elements but N {outFeatures} × rank {ad.Rank} needs {(long)outFeatures * ad.Rank}.", nameof(adapters));
            if (!float.IsFinite(ad.Scale))
                throw new ArgumentException($"Adapter {i}: scale {ad.Scale} is not finite.", nameof(adapters));
            ranks[i] = ad.Rank;
            scales[i] = ad.Scale;
            aOffsets[i] = aTotal;
            bOffsets[i] = bTotal;
            aTotal += ad.A.LongLength;
            bTotal += ad.B.LongLength;
        }

        var aHost = new T[aTotal];
        var bHost = new T[bTotal];
        for (int i = 0; i < adapters.Count; i++)
        {
            adapters[i].A.CopyTo(aHost, aOffsets[i]);
            adapters[i].B.CopyTo(bHost, bOffsets[i]);
        }
        DeviceTensor<T>? aPool = null, bPool = null;
        try
        {
            aPool = device.Upload<T>(aHost, (nint)aTotal);
            bPool = device.Upload<T>(bHost, (nint)bTotal);
            return new LoraAdapterSet<T>(device, inFeatures, outFeatures, ranks, scales, aOffsets, bOffsets, aPool, bPool);
        }
        catch
        {
            aPool?.Dispose();
            bPool?.Dispose();
            throw;
        }
    }

    /// <summary>The device holding the pool.</summary>
    public ComputeDevice Device { get; }

    /// <summary>K, the in-features.</summary>
    public int InFeatures { get; }

    /// <summary>N, the out-features.</summary>
    public int OutFeatures { get; }

    /// <summary>Number of adapters; valid adapter ids are 0…Count−1.</summary>
    public int Count => ranks.Length;

    /// <summary>The largest rank in the set: the column count of the S buffer multi-adapter operations need.</summary>
    public int MaxRank { get; }

    /// <summary>Rank of adapter <paramref name="id"/>.</summary>
    public int Rank(int id) => ranks[id];

    /// <summary>Scale α of adapter <paramref name="id"/>.</summary>
    public float Scale(int id) => scales[id];

    /// <summary>Element offset of adapter <paramref name="id"/>'s A in the A pool.</summary>
    public long AOffset(int id) => aOffsets[id];

    /// <summary>Element offset of adapter <paramref name="id"/>'s B in the B pool.</summary>
    public long BOffset(int id) => bOffsets[id];

    /// <summary>Adapter <paramref name="id"/>'s A (r×K) on the device.</summary>
    public ReadOnlyDeviceTensorSpan<T> A(int id) =>
        aPool.ReadOnlySpan.Slice(new Range((int)aOffsets[id], (int)(aOffsets[id] + (long)ranks[id] * InFeatures))).Reshape(ranks[id], InFeatures);

    /// <summary>Adapter <paramref name="id"/>'s B (N×r) on the device.</summary>
    public ReadOnlyDeviceTensorSpan<T> B(int id) =>
        bPool.ReadOnlySpan.Slice(new Range((int)bOffsets[id], (int)(bOffsets[id] + (long)OutFeatures * ranks[id]))).Reshape(OutFeatures, ranks[id]);

    /// <summary>The kernel-side view of the pool with a per-row adapter table.</summary>
    internal PooledLoraAdapters Map(ArrayView<int> rowAdapters) => new(
        rowAdapters, rankTable.ReadOnlySpan.View.AsContiguous(), scaleTable.ReadOnlySpan.View.AsContiguous(),
        aOffsetTable.ReadOnlySpan.View.AsContiguous(), bOffsetTable.ReadOnlySpan.View.AsContiguous());

    internal ArrayView<T> APool => aPool.ReadOnlySpan.View.AsContiguous();

    internal ArrayView<T> BPool => bPool.ReadOnlySpan.View.AsContiguous();

    /// <summary>Throws <see cref="ObjectDisposedException"/> once <see cref="Dispose"/> has run (operations call it before launching).</summary>
    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(aPool.IsDisposed, this);

    /// <summary>Releases the pool.</summary>
    public void Dispose()
    {
        aPool.Dispose();
        bPool.Dispose();
        rankTable.Dispose();
        scaleTable.Dispose();
        aOffsetTable.Dispose();
        bOffsetTable.Dispose();
    }
}
