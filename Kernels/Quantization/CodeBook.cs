using System.Collections.Concurrent;
using ILGPU;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Quantization;

/// <summary>
/// A quantization code book: the fp32 values an 8-bit (256 entries) or 4-bit (16 entries) code stands for, with the
/// fp32 midpoints the nearest-code search compares against. The tables are literal fp32 bit patterns, bit-identical to
/// bitsandbytes (docs/bitsandbytes.md §1), because regenerating them depends on whether the build fuses
/// multiply-adds (§1.1).
/// </summary>
/// <remarks>
/// <para><b>Indexing.</b> <see cref="Values"/> is indexed by code: dequantization is <c>Values[code] · absmax</c>.
/// Every book except <see cref="FP4"/> is ascending by code. FP4 is indexed like bitsandbytes' nibble (bit 3 = sign,
/// bits 0–2 = magnitude pattern), so it is not ascending and contains −0 (code 8); the search therefore runs over
/// <see cref="Sorted"/>, the distinct values in ascending order (for equal values, only the lowest code is kept, so
/// FP4's −0 is never produced by quantization), and <see cref="SortedCodes"/> maps a sorted position back to its code.
/// For all other books <see cref="Sorted"/> equals <see cref="Values"/> and <see cref="SortedCodes"/> is the
/// identity.</para>
/// <para><b>One tie rule everywhere.</b> The nearest value wins; a value exactly on a midpoint takes the lower sorted
/// position. Equivalently the sorted position is the number of <see cref="Midpoints"/> strictly less than x
/// (bitsandbytes' <c>torch.bucketize(scaled, (code[:-1] + code[1:]) / 2)</c>). NaN compares false with every midpoint
/// and lands on sorted position 0; the block-wise quantizer maps NaN to <see cref="ZeroCode"/> before searching.</para>
/// <para><b>The search table.</b> The kernels find that count by a branch-free binary search over
/// <see cref="SearchMidpoints"/>, the midpoints in breadth-first (Eytzinger) order: node k (1 ≤ k &lt; 2^bits) has
/// children 2k and 2k + 1, so level l of the search reads one of the 2^l consecutive words [2^l, 2^(l+1)). The 32
/// lanes of a warp then touch at most ⌈2^l / 32⌉ words per shared-memory bank at level l (1 for the first six levels,
/// 2 and 4 for the last two), where the sorted layout puts every word of levels 2–4 in one bank and up to 8 words per
/// bank on levels 4–8 (docs/bitsandbytes.md §5.1). The comparisons are the sorted-order binary search's, so the
/// positions are the same.</para>
/// </remarks>
public sealed class CodeBook
{
    private readonly float[] values;
    private readonly float[] sorted;
    private readonly float[] midpoints;
    private readonly float[] searchMidpoints;
    private readonly byte[] sortedCodes;
    private readonly ConcurrentDictionary<ComputeDevice, Lazy<DeviceCodeBook>> uploads = new();

    private CodeBook(string name, int bits, uint[] valueBits)
    {
        if (bits != 8 && bits != 4) throw new ArgumentOutOfRangeException(nameof(bits), bits, "Code books have 8 or 4 bits.");
        if (valueBits.Length != 1 << bits)
            throw new ArgumentException($"A {bits}-bit code book needs {1 << bits} values, got {valueBits.Length}.", nameof(valueBits));
        Name = name;
        Bits = bits;
        values = new float[valueBits.Length];
        for (int i = 0; i < values.Length; i++) values[i] = BitConverter.UInt32BitsToSingle(valueBits[i]);

        // Distinct values ascending; for equal values (FP4's +0 and −0) keep the lowest code.
        var order = Enumerable.Range(0, values.Length).OrderBy(i => values[i]).ThenBy(i => i).ToList();
        var keep = new List<int>();
        foreach (int code in order)
            if (keep.Count == 0 || values[keep[^1]] != values[code]) keep.Add(code);
        sorted = keep.Select(c => values[c]).ToArray();
        sortedCodes = new byte[values.Length];
        for (int i = 0; i < keep.Count; i++) sortedCodes[i] = (byte)keep[i];
        for (int i = keep.Count; i < sortedCodes.Length; i++) sortedCodes[i] = (byte)keep[^1];

        midpoints = new float[sorted.Length - 1];
        for (int i = 0; i < midpoints.Length; i++) midpoints[i] = (sorted[i] + sorted[i + 1]) * 0.5f;
        searchMidpoints = Eytzinger(midpoints, bits);

        ZeroCode = NearestIndex(0f);
        PlusOneCode = NearestIndex(1f);
        MinusOneCode = NearestIndex(-1f);
    }

    /// <summary>The name, e.g. "dynamic-signed".</summary>
    public string Name { get; }

    /// <summary>Bits per code: 8 (256 values, one code per byte) or 4 (16 values, two codes per byte).</summary>
    public int Bits { get; }

    /// <summary>The values indexed by code (2^<see cref="Bits"/> entries); dequantization is <c>Values[code] · absmax</c>.</summary>
    public ReadOnlySpan<float> Values => values;

    /// <summary>The distinct values in ascending order (equal to <see cref="Values"/> for every book except <see cref="FP4"/>).</summary>
    public ReadOnlySpan<float> Sorted => sorted;

    /// <summary>The code of each entry of <see cref="Sorted"/> (2^<see cref="Bits"/> entries; entries past the sorted count repeat the last code).</summary>
    public ReadOnlySpan<byte> SortedCodes => sortedCodes;

    /// <summary>fp32 midpoints between neighbours of <see cref="Sorted"/>, computed once as <c>(s[i] + s[i+1]) * 0.5f</c>.</summary>
    public ReadOnlySpan<float> Midpoints => midpoints;

    /// <summary>
    /// The table <see cref="SearchPosition(ArrayView{float}, int, float)"/> walks: <see cref="Midpoints"/> padded with +∞
    /// to 2^<see cref="Bits"/> − 1 entries, in breadth-first (Eytzinger) order at indices 1 … 2^bits − 1; entry 0 is
    /// unused (+∞). 2^<see cref="Bits"/> floats.
    /// </summary>
    public ReadOnlySpan<float> SearchMidpoints => searchMidpoints;

    /// <summary>
    /// The sorted midpoint index stored at breadth-first node <paramref name="node"/> (1 ≤ node &lt; 2^bits) of a
    /// <paramref name="bits"/>-level search: node 2^l + j of level l is the j-th of that level's 2^l midpoints in
    /// ascending order, the one at sorted index (2j + 1)·2^(bits−1−l) − 1 (the root is index 2^(bits−1) − 1, the pivot
    /// the sorted halving search compares first).
    /// </summary>
    internal static int SortedIndexOfNode(int node, int bits)
    {
        int level = 31 - System.Numerics.BitOperations.LeadingZeroCount((uint)node);
        int j = node - (1 << level);
        return ((2 * j + 1) << (bits - 1 - level)) - 1;
    }

    private static float[] Eytzinger(float[] sortedMidpoints, int bits)
    {
        var tree = new float[1 << bits];
        tree[0] = float.PositiveInfinity;
        for (int node = 1; node < tree.Length; node++)
        {
            int i = SortedIndexOfNode(node, bits);
            tree[node] = i < sortedMidpoints.Length ? sortedMidpoints[i] : float.PositiveInfinity;
        }
        return tree;
    }

    /// <summary>True when <see cref="SortedCodes"/> is the identity (every book except <see cref="FP4"/>).</summary>
    public bool IsAscendingByCode => sorted.Length == values.Length && values.AsSpan().SequenceEqual(sorted);

    /// <summary>The code 0 quantizes to (dequantizes to exactly 0).</summary>
    public int ZeroCode { get; }

    /// <summary>The code +1 quantizes to (+∞ saturates here).</summary>
    public int PlusOneCode { get; }

    /// <summary>The code −1 quantizes to (−∞ saturates here; for unsigned books this is the smallest value).</summary>
    public int MinusOneCode { get; }

    /// <summary>
    /// The code whose value is nearest to <paramref name="x"/> (x already divided by absmax); a tie goes to the lower
    /// sorted position. NaN gives the code of the smallest value.
    /// </summary>
    public int NearestIndex(float x) => sortedCodes[SearchPosition(searchMidpoints, Bits, x)];

    /// <summary>
    /// Host twin of the kernel search: the number of midpoints strictly less than <paramref name="x"/>, walking the
    /// breadth-first table <paramref name="searchMidpoints"/> (<see cref="SearchMidpoints"/>: 2^bits floats) in
    /// <paramref name="bits"/> steps k → 2k + (table[k] &lt; x). The comparisons are exactly those of
    /// <see cref="SearchPosition(ArrayView{float}, int, float)"/>.
    /// </summary>
    public static int SearchPosition(ReadOnlySpan<float> searchMidpoints, int bits, float x)
    {
        int k = 1;
        for (int level = 0; level < bits; level++)
            k = 2 * k + (searchMidpoints[k] < x ? 1 : 0);
        return k - (1 << bits);
    }

    /// <summary>
    /// Kernel-usable search (global or shared memory view of <see cref="DeviceCodeBook.SearchMidpoints"/>): the number of
    /// midpoints strictly less than <paramref name="x"/>, in <paramref name="bits"/> branch-free steps
    /// k → 2k + (table[k] &lt; x) from the root k = 1. Level l reads one of the consecutive words [2^l, 2^(l+1)), so a
    /// warp's loads spread over the banks (see the remarks on the class). Same comparisons as the host overload, hence
    /// the same positions on every device.
    /// </summary>
    public static int SearchPosition(ArrayView<float> searchMidpoints, int bits, float x)
    {
        int k = 1;
        for (int level = 0; level < bits; level++)
            k = 2 * k + (searchMidpoints[k] < x ? 1 : 0);
        return k - (1 << bits);
    }

    /// <summary>
    /// Device copies of the tables on <paramref name="device"/>, uploaded on first use and cached for the process
    /// (code books are immutable singletons, so the cache never goes stale). The cached copy belongs to the cache:
    /// disposing it frees its device memory and drops it from the cache, so the next call uploads a fresh copy.
    /// </summary>
    public DeviceCodeBook Upload(ComputeDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        while (true)
        {
            var table = uploads.GetOrAdd(device, d => new Lazy<DeviceCodeBook>(() => new DeviceCodeBook(d, this),
                LazyThreadSafetyMode.ExecutionAndPublication)).Value;
            if (!table.IsDisposed) return table;
            Forget(table); // disposed between the look-up and now: replace it
        }
    }

    // Drops a disposed device copy from the cache (only if the cache still holds that very instance).
    internal void Forget(DeviceCodeBook table)
    {
        if (uploads.TryGetValue(table.Device, out var lazy) && lazy.IsValueCreated && ReferenceEquals(lazy.Value, table))
            uploads.TryRemove(new KeyValuePair<ComputeDevice, Lazy<DeviceCodeBook>>(table.Device, lazy));
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Bits}-bit)";

    /// <summary>
    /// bitsandbytes' signed dynamic (tree) map <c>create_dynamic_map(signed=True)</c>: 256 ascending values in
    /// [−0.99296874, 1.0], zero at code 127. The default map for weights and for Adam's first moment.
    /// </summary>
    public static CodeBook DynamicSigned { get; } = new("dynamic-signed", 8, Tables.DynamicSignedBits);

    /// <summary>bitsandbytes' unsigned dynamic map <c>create_dynamic_map(signed=False)</c>: 256 ascending values in [0, 1.0]; Adam's second moment.</summary>
    public static CodeBook DynamicUnsigned { get; } = new("dynamic-unsigned", 8, Tables.DynamicUnsignedBits);

    /// <summary>
    /// bitsandbytes' <c>create_linear_map(signed=True)</c>: fp32 <c>linspace(−1, 1, 255)</c> (single-rounded
    /// multiply-add, as torch computes it) with a literal 0 inserted at code 127, so code 128 is 3.7e−9.
    /// </summary>
    public static CodeBook LinearSigned { get; } = new("linear-signed", 8, Tables.LinearSignedBits);

    /// <summary>bitsandbytes' <c>create_linear_map(signed=False)</c>: fp32 <c>linspace(0, 1, 256)</c>.</summary>
    public static CodeBook LinearUnsigned { get; } = new("linear-unsigned", 8, Tables.LinearUnsignedBits);

    /// <summary>4-bit NormalFloat (QLoRA), bitsandbytes' NF4 table: 16 ascending values in [−1, 1], zero at code 7.</summary>
    public static CodeBook NF4 { get; } = new("nf4", 4, Tables.Nf4Bits);

    /// <summary>
    /// bitsandbytes' FP4 (E2M1 with bias, 1 sign bit = bit 3), indexed by nibble: magnitudes 0, 0.0625, 8, 12, 4, 6, 2, 3
    /// (divided by 12) for patterns 000…111; code 8 is −0. Not ascending by code (see the remarks on the class).
    /// </summary>
    public static CodeBook FP4 { get; } = new("fp4", 4, Tables.Fp4Bits);

    /// <summary>Every built-in code book.</summary>
    public static IReadOnlyList<CodeBook> All { get; } = [DynamicSigned, DynamicUnsigned, LinearSigned, LinearUnsigned, NF4, FP4];

    // fp32 bit patterns (docs/bitsandbytes.md §1; generated with the fp32 recipe of §1.1 and checked against its SHA-256).
    // A nested class so the tables are initialized before the static code books that read them.
    private static class Tables
    {
        internal static readonly uint[] DynamicSignedBits =
        [
            0xbf7e3333u, 0xbf7a999au, 0xbf770000u, 0xbf736666u, 0xbf6fcccdu, 0xbf6c3333u, 0xbf68999au, 0xbf650000u,
            0xbf616666u, 0xbf5dcccdu, 0xbf5a3333u, 0xbf56999au, 0xbf530000u, 0xbf4f6666u, 0xbf4bcccdu, 0xbf483333u,
            0xbf44999au, 0xbf410000u, 0xbf3d6666u, 0xbf39cccdu, 0xbf363334u, 0xbf32999au, 0xbf2f0000u, 0xbf2b6666u,
            0xbf27cccdu, 0xbf243334u, 0xbf20999au, 0xbf1d0000u, 0xbf196666u, 0xbf15cccdu, 0xbf123334u, 0xbf0e999au,
            0xbf0b0000u, 0xbf076666u, 0xbf03ccccu, 0xbf003333u, 0xbef93332u, 0xbef20000u, 0xbeeaccccu, 0xbee3999au,
            0xbedc6666u, 0xbed53333u, 0xbece0000u, 0xbec6ccccu, 0xbebf999au, 0xbeb86666u, 0xbeb13333u, 0xbeaa0000u,
            0xbea2ccccu, 0xbe9b999au, 0xbe946666u, 0xbe8d3334u, 0xbe860000u, 0xbe7d9999u, 0xbe6f3333u, 0xbe60cccdu,
            0xbe526666u, 0xbe440000u, 0xbe35999au, 0xbe273333u, 0xbe18cccdu, 0xbe0a6666u, 0xbdf80000u, 0xbddb3334u,
            0xbdc9eb85u, 0xbdc428f7u, 0xbdbe6667u, 0xbdb8a3d7u, 0xbdb2e148u, 0xbdad1eb8u, 0xbda75c2au, 0xbda1999au,
            0xbd9bd70au, 0xbd96147bu, 0xbd9051ebu, 0xbd8a8f5du, 0xbd84cccdu, 0xbd7e147bu, 0xbd728f5du, 0xbd670a3du,
            0xbd5b851fu, 0xbd500000u, 0xbd447ae1u, 0xbd38f5c3u, 0xbd2d70a3u, 0xbd21eb85u, 0xbd166667u, 0xbd0ae148u,
            0xbcfeb852u, 0xbce7ae15u, 0xbcd0a3d7u, 0xbcb9999au, 0xbca28f5du, 0xbc8b851fu, 0xbc68f5c3u, 0xbc3ae148u,
            0xbc1f3b64u, 0xbc160418u, 0xbc0ccccdu, 0xbc039581u, 0xbbf4bc6au, 0xbbe24dd3u, 0xbbcfdf3bu, 0xbbbd70a4u,
            0xbbab020du, 0xbb989374u, 0xbb8624ddu, 0xbb676c8au, 0xbb428f5cu, 0xbb1db22du, 0xbaf1a9fcu, 0xbaa7ef9du,
            0xba7765ffu, 0xba59e83eu, 0xba3c6a80u, 0xba1eecc1u, 0xba016f01u, 0xb9c7e283u, 0xb98ce705u, 0xb923d70bu,
            0xb8ba1f4bu, 0xb88aefb3u, 0xb8378034u, 0xb7b24206u, 0xb70205ffu, 0xb65a1a94u, 0xb513a3b7u, 0x00000000u,
            0x3513a3b7u, 0x365a1a94u, 0x370205ffu, 0x37b24206u, 0x38378034u, 0x388aefb3u, 0x38ba1f4bu, 0x3923d70bu,
            0x398ce705u, 0x39c7e283u, 0x3a016f01u, 0x3a1eecc1u, 0x3a3c6a80u, 0x3a59e83eu, 0x3a7765ffu, 0x3aa7ef9du,
            0x3af1a9fcu, 0x3b1db22du, 0x3b428f5cu, 0x3b676c8au, 0x3b8624ddu, 0x3b989374u, 0x3bab020du, 0x3bbd70a4u,
            0x3bcfdf3bu, 0x3be24dd3u, 0x3bf4bc6au, 0x3c039581u, 0x3c0ccccdu, 0x3c160418u, 0x3c1f3b64u, 0x3c3ae148u,
            0x3c68f5c3u, 0x3c8b851fu, 0x3ca28f5du, 0x3cb9999au, 0x3cd0a3d7u, 0x3ce7ae15u, 0x3cfeb852u, 0x3d0ae148u,
            0x3d166667u, 0x3d21eb85u, 0x3d2d70a3u, 0x3d38f5c3u, 0x3d447ae1u, 0x3d500000u, 0x3d5b851fu, 0x3d670a3du,
            0x3d728f5du, 0x3d7e147bu, 0x3d84cccdu, 0x3d8a8f5du, 0x3d9051ebu, 0x3d96147bu, 0x3d9bd70au, 0x3da1999au,
            0x3da75c2au, 0x3dad1eb8u, 0x3db2e148u, 0x3db8a3d7u, 0x3dbe6667u, 0x3dc428f7u, 0x3dc9eb85u, 0x3ddb3334u,
            0x3df80000u, 0x3e0a6666u, 0x3e18cccdu, 0x3e273333u, 0x3e35999au, 0x3e440000u, 0x3e526666u, 0x3e60cccdu,
            0x3e6f3333u, 0x3e7d9999u, 0x3e860000u, 0x3e8d3334u, 0x3e946666u, 0x3e9b999au, 0x3ea2ccccu, 0x3eaa0000u,
            0x3eb13333u, 0x3eb86666u, 0x3ebf999au, 0x3ec6ccccu, 0x3ece0000u, 0x3ed53333u, 0x3edc6666u, 0x3ee3999au,
            0x3eeaccccu, 0x3ef20000u, 0x3ef93332u, 0x3f003333u, 0x3f03ccccu, 0x3f076666u, 0x3f0b0000u, 0x3f0e999au,
            0x3f123334u, 0x3f15cccdu, 0x3f196666u, 0x3f1d0000u, 0x3f20999au, 0x3f243334u, 0x3f27cccdu, 0x3f2b6666u,
            0x3f2f0000u, 0x3f32999au, 0x3f363334u, 0x3f39cccdu, 0x3f3d6666u, 0x3f410000u, 0x3f44999au, 0x3f483333u,
            0x3f4bcccdu, 0x3f4f6666u, 0x3f530000u, 0x3f56999au, 0x3f5a3333u, 0x3f5dcccdu, 0x3f616666u, 0x3f650000u,
            0x3f68999au, 0x3f6c3333u, 0x3f6fcccdu, 0x3f736666u, 0x3f770000u, 0x3f7a999au, 0x3f7e3333u, 0x3f800000u,
        ];
        internal static readonly uint[] DynamicUnsignedBits =
        [
            0x00000000u, 0x34ae7baau, 0x35500998u, 0x360e9b38u, 0x3692ccf6u, 0x36de4c51u, 0x3714e5d5u, 0x3783126eu,
            0x37e171a0u, 0x381fe868u, 0x384f1800u, 0x387e479au, 0x3896bb99u, 0x38ae5364u, 0x38c5eb31u, 0x3906594bu,
            0x394154cau, 0x397c5049u, 0x399ba5e4u, 0x39b923a2u, 0x39d6a163u, 0x39f41f22u, 0x3a08ce71u, 0x3a178d50u,
            0x3a264c30u, 0x3a350b10u, 0x3a43c9efu, 0x3a5288d0u, 0x3a6147afu, 0x3a70068eu, 0x3a7ec56eu, 0x3a958106u,
            0x3aba5e35u, 0x3adf3b64u, 0x3b020c4au, 0x3b147ae1u, 0x3b26e978u, 0x3b395810u, 0x3b4bc6a7u, 0x3b5e3540u,
            0x3b70a3d7u, 0x3b818937u, 0x3b8ac082u, 0x3b93f7cfu, 0x3b9d2f1au, 0x3ba66666u, 0x3baf9db2u, 0x3bb8d4fdu,
            0x3bc20c4au, 0x3bcb4395u, 0x3bd47ae1u, 0x3bddb22eu, 0x3be6e978u, 0x3bf020c5u, 0x3bf9580fu, 0x3c0147aeu,
            0x3c05e354u, 0x3c0a7ef9u, 0x3c0f1aa0u, 0x3c13b645u, 0x3c1851ebu, 0x3c1ced92u, 0x3c218937u, 0x3c2f5c2au,
            0x3c466667u, 0x3c5d70a3u, 0x3c747ae2u, 0x3c85c28fu, 0x3c9147afu, 0x3c9ccccdu, 0x3ca851ebu, 0x3cb3d70bu,
            0x3cbf5c29u, 0x3ccae147u, 0x3cd66667u, 0x3ce1eb87u, 0x3ced70a3u, 0x3cf8f5c3u, 0x3d023d70u, 0x3d080000u,
            0x3d0dc28fu, 0x3d13851fu, 0x3d1947afu, 0x3d1f0a3du, 0x3d24cccdu, 0x3d2a8f5cu, 0x3d3051ebu, 0x3d36147bu,
            0x3d3bd70au, 0x3d41999au, 0x3d475c28u, 0x3d4d1eb8u, 0x3d52e147u, 0x3d58a3d7u, 0x3d5e6667u, 0x3d6428f7u,
            0x3d69eb87u, 0x3d6fae15u, 0x3d7570a3u, 0x3d7b3333u, 0x3d807ae2u, 0x3d835c2au, 0x3d863d71u, 0x3d891eb8u,
            0x3d8c0000u, 0x3d8ee148u, 0x3d91c290u, 0x3d94a3d7u, 0x3d97851fu, 0x3d9a6667u, 0x3d9d47afu, 0x3da028f6u,
            0x3da30a3eu, 0x3da5eb85u, 0x3da8cccdu, 0x3dabae15u, 0x3dae8f5cu, 0x3db170a4u, 0x3db451ebu, 0x3db73333u,
            0x3dba147bu, 0x3dbcf5c3u, 0x3dbfd70bu, 0x3dc2b852u, 0x3dc5999au, 0x3dc87ae2u, 0x3dcb5c29u, 0x3dd40000u,
            0x3de26666u, 0x3df0cccdu, 0x3dff3333u, 0x3e06ccccu, 0x3e0e0000u, 0x3e153334u, 0x3e1c6666u, 0x3e23999au,
            0x3e2accccu, 0x3e320000u, 0x3e393334u, 0x3e406666u, 0x3e47999au, 0x3e4eccccu, 0x3e560000u, 0x3e5d3334u,
            0x3e646666u, 0x3e6b999au, 0x3e72ccccu, 0x3e7a0000u, 0x3e809999u, 0x3e843333u, 0x3e87cccdu, 0x3e8b6666u,
            0x3e8f0000u, 0x3e92999au, 0x3e963333u, 0x3e99ccccu, 0x3e9d6666u, 0x3ea10000u, 0x3ea4999au, 0x3ea83333u,
            0x3eabccccu, 0x3eaf6666u, 0x3eb30000u, 0x3eb6999au, 0x3eba3333u, 0x3ebdccccu, 0x3ec16666u, 0x3ec50000u,
            0x3ec8999au, 0x3ecc3333u, 0x3ecfccccu, 0x3ed36666u, 0x3ed70000u, 0x3eda999au, 0x3ede3333u, 0x3ee1ccccu,
            0x3ee56666u, 0x3ee90000u, 0x3eec999au, 0x3ef03333u, 0x3ef3ccccu, 0x3ef76666u, 0x3efb0000u, 0x3efe9999u,
            0x3f01199au, 0x3f02e666u, 0x3f04b333u, 0x3f068000u, 0x3f084cccu, 0x3f0a199au, 0x3f0be666u, 0x3f0db334u,
            0x3f0f8000u, 0x3f114ccdu, 0x3f13199au, 0x3f14e666u, 0x3f16b334u, 0x3f188000u, 0x3f1a4ccdu, 0x3f1c199au,
            0x3f1de666u, 0x3f1fb334u, 0x3f218000u, 0x3f234ccdu, 0x3f25199au, 0x3f26e666u, 0x3f28b334u, 0x3f2a8000u,
            0x3f2c4ccdu, 0x3f2e199au, 0x3f2fe666u, 0x3f31b334u, 0x3f338000u, 0x3f354ccdu, 0x3f37199au, 0x3f38e666u,
            0x3f3ab334u, 0x3f3c8000u, 0x3f3e4ccdu, 0x3f40199au, 0x3f41e666u, 0x3f43b334u, 0x3f458000u, 0x3f474cccu,
            0x3f49199au, 0x3f4ae666u, 0x3f4cb334u, 0x3f4e8000u, 0x3f504cccu, 0x3f52199au, 0x3f53e666u, 0x3f55b334u,
            0x3f578000u, 0x3f594cccu, 0x3f5b199au, 0x3f5ce666u, 0x3f5eb334u, 0x3f608000u, 0x3f624cccu, 0x3f64199au,
            0x3f65e666u, 0x3f67b334u, 0x3f698000u, 0x3f6b4cccu, 0x3f6d199au, 0x3f6ee666u, 0x3f70b334u, 0x3f728000u,
            0x3f744cccu, 0x3f76199au, 0x3f77e666u, 0x3f79b334u, 0x3f7b8000u, 0x3f7d4cccu, 0x3f7f199au, 0x3f800000u,
        ];
        internal static readonly uint[] LinearSignedBits =
        [
            0xbf800000u, 0xbf7dfbf8u, 0xbf7bf7f0u, 0xbf79f3e8u, 0xbf77efe0u, 0xbf75ebd8u, 0xbf73e7d0u, 0xbf71e3c8u,
            0xbf6fdfc0u, 0xbf6ddbb7u, 0xbf6bd7afu, 0xbf69d3a7u, 0xbf67cf9fu, 0xbf65cb97u, 0xbf63c78fu, 0xbf61c387u,
            0xbf5fbf7fu, 0xbf5dbb77u, 0xbf5bb76fu, 0xbf59b367u, 0xbf57af5fu, 0xbf55ab57u, 0xbf53a74fu, 0xbf51a347u,
            0xbf4f9f3eu, 0xbf4d9b36u, 0xbf4b972eu, 0xbf499326u, 0xbf478f1eu, 0xbf458b16u, 0xbf43870eu, 0xbf418306u,
            0xbf3f7efeu, 0xbf3d7af6u, 0xbf3b76eeu, 0xbf3972e6u, 0xbf376edeu, 0xbf356ad6u, 0xbf3366ceu, 0xbf3162c6u,
            0xbf2f5ebeu, 0xbf2d5ab5u, 0xbf2b56adu, 0xbf2952a5u, 0xbf274e9du, 0xbf254a95u, 0xbf23468du, 0xbf214285u,
            0xbf1f3e7du, 0xbf1d3a75u, 0xbf1b366du, 0xbf193265u, 0xbf172e5du, 0xbf152a55u, 0xbf13264du, 0xbf112245u,
            0xbf0f1e3cu, 0xbf0d1a34u, 0xbf0b162cu, 0xbf091224u, 0xbf070e1cu, 0xbf050a14u, 0xbf03060cu, 0xbf010204u,
            0xbefdfbf8u, 0xbef9f3e8u, 0xbef5ebd8u, 0xbef1e3c8u, 0xbeeddbb8u, 0xbee9d3a7u, 0xbee5cb97u, 0xbee1c387u,
            0xbeddbb77u, 0xbed9b367u, 0xbed5ab57u, 0xbed1a347u, 0xbecd9b36u, 0xbec99326u, 0xbec58b16u, 0xbec18306u,
            0xbebd7af6u, 0xbeb972e6u, 0xbeb56ad6u, 0xbeb162c6u, 0xbead5ab6u, 0xbea952a5u, 0xbea54a95u, 0xbea14285u,
            0xbe9d3a75u, 0xbe993265u, 0xbe952a55u, 0xbe912245u, 0xbe8d1a34u, 0xbe891224u, 0xbe850a14u, 0xbe810204u,
            0xbe79f3e8u, 0xbe71e3c8u, 0xbe69d3a8u, 0xbe61c387u, 0xbe59b367u, 0xbe51a347u, 0xbe499326u, 0xbe418306u,
            0xbe3972e6u, 0xbe3162c6u, 0xbe2952a6u, 0xbe214285u, 0xbe193265u, 0xbe112245u, 0xbe091224u, 0xbe010204u,
            0xbdf1e3c8u, 0xbde1c388u, 0xbdd1a347u, 0xbdc18306u, 0xbdb162c6u, 0xbda14286u, 0xbd912245u, 0xbd810204u,
            0xbd61c388u, 0xbd418307u, 0xbd214286u, 0xbd010205u, 0xbcc18308u, 0xbc810206u, 0xbc010208u, 0x00000000u,
            0x31800000u, 0x3c010208u, 0x3c810206u, 0x3cc18308u, 0x3d010205u, 0x3d214286u, 0x3d418307u, 0x3d61c388u,
            0x3d810204u, 0x3d912245u, 0x3da14286u, 0x3db162c6u, 0x3dc18306u, 0x3dd1a347u, 0x3de1c388u, 0x3df1e3c8u,
            0x3e010204u, 0x3e091224u, 0x3e112245u, 0x3e193265u, 0x3e214285u, 0x3e2952a6u, 0x3e3162c6u, 0x3e3972e6u,
            0x3e418306u, 0x3e499326u, 0x3e51a347u, 0x3e59b367u, 0x3e61c387u, 0x3e69d3a8u, 0x3e71e3c8u, 0x3e79f3e8u,
            0x3e810204u, 0x3e850a14u, 0x3e891224u, 0x3e8d1a34u, 0x3e912245u, 0x3e952a55u, 0x3e993265u, 0x3e9d3a75u,
            0x3ea14285u, 0x3ea54a95u, 0x3ea952a5u, 0x3ead5ab6u, 0x3eb162c6u, 0x3eb56ad6u, 0x3eb972e6u, 0x3ebd7af6u,
            0x3ec18306u, 0x3ec58b16u, 0x3ec99326u, 0x3ecd9b36u, 0x3ed1a347u, 0x3ed5ab57u, 0x3ed9b367u, 0x3eddbb77u,
            0x3ee1c387u, 0x3ee5cb97u, 0x3ee9d3a7u, 0x3eeddbb8u, 0x3ef1e3c8u, 0x3ef5ebd8u, 0x3ef9f3e8u, 0x3efdfbf8u,
            0x3f010204u, 0x3f03060cu, 0x3f050a14u, 0x3f070e1cu, 0x3f091224u, 0x3f0b162cu, 0x3f0d1a34u, 0x3f0f1e3cu,
            0x3f112245u, 0x3f13264du, 0x3f152a55u, 0x3f172e5du, 0x3f193265u, 0x3f1b366du, 0x3f1d3a75u, 0x3f1f3e7du,
            0x3f214285u, 0x3f23468du, 0x3f254a95u, 0x3f274e9du, 0x3f2952a5u, 0x3f2b56adu, 0x3f2d5ab5u, 0x3f2f5ebeu,
            0x3f3162c6u, 0x3f3366ceu, 0x3f356ad6u, 0x3f376edeu, 0x3f3972e6u, 0x3f3b76eeu, 0x3f3d7af6u, 0x3f3f7efeu,
            0x3f418306u, 0x3f43870eu, 0x3f458b16u, 0x3f478f1eu, 0x3f499326u, 0x3f4b972eu, 0x3f4d9b36u, 0x3f4f9f3eu,
            0x3f51a347u, 0x3f53a74fu, 0x3f55ab57u, 0x3f57af5fu, 0x3f59b367u, 0x3f5bb76fu, 0x3f5dbb77u, 0x3f5fbf7fu,
            0x3f61c387u, 0x3f63c78fu, 0x3f65cb97u, 0x3f67cf9fu, 0x3f69d3a7u, 0x3f6bd7afu, 0x3f6ddbb7u, 0x3f6fdfc0u,
            0x3f71e3c8u, 0x3f73e7d0u, 0x3f75ebd8u, 0x3f77efe0u, 0x3f79f3e8u, 0x3f7bf7f0u, 0x3f7dfbf8u, 0x3f800000u,
        ];
        internal static readonly uint[] LinearUnsignedBits =
        [
            0x00000000u, 0x3b808081u, 0x3c008081u, 0x3c40c0c2u, 0x3c808081u, 0x3ca0a0a1u, 0x3cc0c0c2u, 0x3ce0e0e2u,
            0x3d008081u, 0x3d109091u, 0x3d20a0a1u, 0x3d30b0b1u, 0x3d40c0c2u, 0x3d50d0d2u, 0x3d60e0e2u, 0x3d70f0f2u,
            0x3d808081u, 0x3d888889u, 0x3d909091u, 0x3d989899u, 0x3da0a0a1u, 0x3da8a8a9u, 0x3db0b0b1u, 0x3db8b8b9u,
            0x3dc0c0c2u, 0x3dc8c8cau, 0x3dd0d0d2u, 0x3dd8d8dau, 0x3de0e0e2u, 0x3de8e8eau, 0x3df0f0f2u, 0x3df8f8fau,
            0x3e008081u, 0x3e048485u, 0x3e088889u, 0x3e0c8c8du, 0x3e109091u, 0x3e149495u, 0x3e189899u, 0x3e1c9c9du,
            0x3e20a0a1u, 0x3e24a4a5u, 0x3e28a8a9u, 0x3e2cacadu, 0x3e30b0b1u, 0x3e34b4b5u, 0x3e38b8b9u, 0x3e3cbcbdu,
            0x3e40c0c2u, 0x3e44c4c6u, 0x3e48c8cau, 0x3e4cccceu, 0x3e50d0d2u, 0x3e54d4d6u, 0x3e58d8dau, 0x3e5cdcdeu,
            0x3e60e0e2u, 0x3e64e4e6u, 0x3e68e8eau, 0x3e6ceceeu, 0x3e70f0f2u, 0x3e74f4f6u, 0x3e78f8fau, 0x3e7cfcfeu,
            0x3e808081u, 0x3e828283u, 0x3e848485u, 0x3e868687u, 0x3e888889u, 0x3e8a8a8bu, 0x3e8c8c8du, 0x3e8e8e8fu,
            0x3e909091u, 0x3e929293u, 0x3e949495u, 0x3e969697u, 0x3e989899u, 0x3e9a9a9bu, 0x3e9c9c9du, 0x3e9e9e9fu,
            0x3ea0a0a1u, 0x3ea2a2a3u, 0x3ea4a4a5u, 0x3ea6a6a7u, 0x3ea8a8a9u, 0x3eaaaaabu, 0x3eacacadu, 0x3eaeaeafu,
            0x3eb0b0b1u, 0x3eb2b2b3u, 0x3eb4b4b5u, 0x3eb6b6b7u, 0x3eb8b8b9u, 0x3ebababbu, 0x3ebcbcbdu, 0x3ebebebfu,
            0x3ec0c0c2u, 0x3ec2c2c4u, 0x3ec4c4c6u, 0x3ec6c6c8u, 0x3ec8c8cau, 0x3ecacaccu, 0x3eccccceu, 0x3ececed0u,
            0x3ed0d0d2u, 0x3ed2d2d4u, 0x3ed4d4d6u, 0x3ed6d6d8u, 0x3ed8d8dau, 0x3edadadcu, 0x3edcdcdeu, 0x3ededee0u,
            0x3ee0e0e2u, 0x3ee2e2e4u, 0x3ee4e4e6u, 0x3ee6e6e8u, 0x3ee8e8eau, 0x3eeaeaecu, 0x3eececeeu, 0x3eeeeef0u,
            0x3ef0f0f2u, 0x3ef2f2f4u, 0x3ef4f4f6u, 0x3ef6f6f8u, 0x3ef8f8fau, 0x3efafafcu, 0x3efcfcfeu, 0x3efeff00u,
            0x3f008080u, 0x3f018181u, 0x3f028282u, 0x3f038383u, 0x3f048484u, 0x3f058585u, 0x3f068686u, 0x3f078787u,
            0x3f088888u, 0x3f098989u, 0x3f0a8a8au, 0x3f0b8b8bu, 0x3f0c8c8cu, 0x3f0d8d8du, 0x3f0e8e8eu, 0x3f0f8f8fu,
            0x3f109090u, 0x3f119191u, 0x3f129292u, 0x3f139393u, 0x3f149494u, 0x3f159595u, 0x3f169696u, 0x3f179797u,
            0x3f189898u, 0x3f199999u, 0x3f1a9a9au, 0x3f1b9b9bu, 0x3f1c9c9cu, 0x3f1d9d9du, 0x3f1e9e9eu, 0x3f1f9f9fu,
            0x3f20a0a0u, 0x3f21a1a1u, 0x3f22a2a2u, 0x3f23a3a3u, 0x3f24a4a4u, 0x3f25a5a5u, 0x3f26a6a6u, 0x3f27a7a7u,
            0x3f28a8a8u, 0x3f29a9a9u, 0x3f2aaaaau, 0x3f2bababu, 0x3f2cacacu, 0x3f2dadadu, 0x3f2eaeaeu, 0x3f2fafafu,
            0x3f30b0b0u, 0x3f31b1b1u, 0x3f32b2b2u, 0x3f33b3b3u, 0x3f34b4b4u, 0x3f35b5b5u, 0x3f36b6b6u, 0x3f37b7b7u,
            0x3f38b8b8u, 0x3f39b9b9u, 0x3f3ababau, 0x3f3bbbbbu, 0x3f3cbcbcu, 0x3f3dbdbdu, 0x3f3ebebeu, 0x3f3fbfc0u,
            0x3f40c0c1u, 0x3f41c1c2u, 0x3f42c2c3u, 0x3f43c3c4u, 0x3f44c4c5u, 0x3f45c5c6u, 0x3f46c6c7u, 0x3f47c7c8u,
            0x3f48c8c9u, 0x3f49c9cau, 0x3f4acacbu, 0x3f4bcbccu, 0x3f4ccccdu, 0x3f4dcdceu, 0x3f4ececfu, 0x3f4fcfd0u,
            0x3f50d0d1u, 0x3f51d1d2u, 0x3f52d2d3u, 0x3f53d3d4u, 0x3f54d4d5u, 0x3f55d5d6u, 0x3f56d6d7u, 0x3f57d7d8u,
            0x3f58d8d9u, 0x3f59d9dau, 0x3f5adadbu, 0x3f5bdbdcu, 0x3f5cdcddu, 0x3f5ddddeu, 0x3f5ededfu, 0x3f5fdfe0u,
            0x3f60e0e1u, 0x3f61e1e2u, 0x3f62e2e3u, 0x3f63e3e4u, 0x3f64e4e5u, 0x3f65e5e6u, 0x3f66e6e7u, 0x3f67e7e8u,
            0x3f68e8e9u, 0x3f69e9eau, 0x3f6aeaebu, 0x3f6bebecu, 0x3f6cecedu, 0x3f6dedeeu, 0x3f6eeeefu, 0x3f6feff0u,
            0x3f70f0f1u, 0x3f71f1f2u, 0x3f72f2f3u, 0x3f73f3f4u, 0x3f74f4f5u, 0x3f75f5f6u, 0x3f76f6f7u, 0x3f77f7f8u,
            0x3f78f8f9u, 0x3f79f9fau, 0x3f7afafbu, 0x3f7bfbfcu, 0x3f7cfcfdu, 0x3f7dfdfeu, 0x3f7efeffu, 0x3f800000u,
        ];
        internal static readonly uint[] Nf4Bits =
        [
            0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u, 0x00000000u,
            0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u,
        ];
        internal static readonly uint[] Fp4Bits =
        [
            0x00000000u, 0x3baaaaabu, 0x3f2aaaabu, 0x3f800000u, 0x3eaaaaabu, 0x3f000000u, 0x3e2aaaabu, 0x3e800000u,
            0x80000000u, 0xbbaaaaabu, 0xbf2aaaabu, 0xbf800000u, 0xbeaaaaabu, 0xbf000000u, 0xbe2aaaabu, 0xbe800000u,
        ];
    }
}

/// <summary>
/// A code book's tables in device memory (cached by <see cref="CodeBook.Upload"/>): values by code, the breadth-first
/// search table, and the sorted-position → code map. It owns that device memory: <see cref="Dispose"/> frees it and drops
/// this copy from the cache (the next <see cref="CodeBook.Upload"/> uploads a new one). Dispose only when no queued
/// operation still reads it; its views throw <see cref="ObjectDisposedException"/> afterwards.
/// </summary>
public sealed class DeviceCodeBook : IDisposable
{
    private readonly DeviceTensor<float> values;
    private readonly DeviceTensor<float> searchMidpoints;
    private readonly DeviceTensor<byte> sortedCodes;
    private readonly DeviceTensor<float> sortedValues;

    internal DeviceCodeBook(ComputeDevice device, CodeBook book)
    {
        Book = book;
        Device = device;
        values = device.Upload<float>(book.Values);
        searchMidpoints = device.Upload<float>(book.SearchMidpoints);
        sortedCodes = device.Upload<byte>(book.SortedCodes);
        var padded = new float[book.Values.Length];
        Array.Fill(padded, book.Sorted[^1]);
        book.Sorted.CopyTo(padded);
        sortedValues = device.Upload<float>(padded);
    }

    /// <summary>The host code book.</summary>
    public CodeBook Book { get; }

    /// <summary>The device holding the tables.</summary>
    public ComputeDevice Device { get; }

    /// <summary>True once <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => values.IsDisposed;

    /// <summary>Frees the four device tables and drops this copy from <see cref="CodeBook.Upload"/>'s cache. Idempotent.</summary>
    public void Dispose()
    {
        Book.Forget(this);
        values.Dispose();
        searchMidpoints.Dispose();
        sortedCodes.Dispose();
        sortedValues.Dispose();
    }

    /// <summary>Values by code (2^bits floats).</summary>
    public ArrayView<float> Values => values.Span.View;

    /// <summary>The breadth-first search table <see cref="CodeBook.SearchMidpoints"/> (2^bits floats, entry 0 unused).</summary>
    public ArrayView<float> SearchMidpoints => searchMidpoints.Span.View;

    /// <summary>Sorted position → code (2^bits bytes).</summary>
    public ArrayView<byte> SortedCodes => sortedCodes.Span.View;

    /// <summary><see cref="CodeBook.Sorted"/> padded with its last value to 2^bits floats (stochastic rounding reads it).</summary>
    public ArrayView<float> SortedValues => sortedValues.Span.View;
}
