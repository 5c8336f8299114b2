using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Lora;

/// <summary>
/// Which adapter each token row of a multi-adapter batch uses, as a per-row table on the device (−1 = no adapter).
/// Built from Punica SGMV segments (<c>segmentStarts[S+1]</c>, <c>adapterIds[S]</c>: rows
/// segmentStarts[s]…segmentStarts[s+1]−1 use adapter adapterIds[s]) or from one index per token (BGMV, vLLM's
/// <c>token_lora_mapping</c>). Validated on construction (segments in order and in range, ids ≥ −1); adapter ids are
/// checked against the adapter set when an operation runs. Rows are never copied or padded: kernels look the
/// adapter up per row. Construction uploads the table and waits for the copy; operations using it do not synchronize.
/// </summary>
public sealed class LoraBatch : IDisposable
{
    private readonly DeviceTensor<int> table;
    private readonly int[] hostTable;

    private LoraBatch(ComputeDevice device, int[] rowAdapters)
    {
        if (rowAdapters.Length == 0) throw new ArgumentException("A LoRA batch needs at least one row.", nameof(rowAdapters));
        Device = device;
        hostTable = rowAdapters;
        Rows = rowAdapters.Length;
        MaxAdapterId = rowAdapters.Length == 0 ? -1 : rowAdapters.Max();
        table = device.Upload<int>(rowAdapters, rowAdapters.Length);
    }

    /// <summary>
    /// A batch of segments: rows [segmentStarts[s], segmentStarts[s+1]) use adapter adapterIds[s] (−1: none).
    /// segmentStarts[0] must be 0 and the starts non-decreasing (empty segments are allowed); the batch has
    /// segmentStarts[S] rows.
    /// </summary>
    /// <exception cref="ArgumentException">The segments are out of order, do not start at 0, or an id is below −1.</exception>
    public static LoraBatch FromSegments(ComputeDevice device, ReadOnlySpan<int> segmentStarts, ReadOnlySpan<int> adapterIds)
    {
        ArgumentNullException.ThrowIfNull(device);
        int segments = adapterIds.Length;
        if (segmentStarts.Length != segments + 1)
            throw new ArgumentException($"segmentStarts has {segmentStarts.Length} entries but {segments} adapter ids need {segments + 1}.", nameof(segmentStarts));
        if (segmentStarts[0] != 0)
            throw new ArgumentException($"segmentStarts[0] is {segmentStarts[0]}; the first segment must start at row 0.", nameof(segmentStarts));
        for (int s = 0; s < segments; s++)
        {
            if (segmentStarts[s + 1] < segmentStarts[s])
                throw new ArgumentException($"segmentStarts is out of order: [{s}] = {segmentStarts[s]} > [{s + 1}] = {segmentStarts[s + 1]}.", nameof(segmentStarts));
            if (adapterIds[s] < -1)
                throw new ArgumentOutOfRangeException(nameof(adapterIds), $"adapterIds[{s}] = {adapterIds[s]}; ids are ≥ 0, or −1 for no adapter.");
        }
        var rows = new int[segmentStarts[segments]];
        for (int s = 0; s < segments; s++)
            rows.AsSpan(segmentStarts[s], segmentStarts[s + 1] - segmentStarts[s]).Fill(adapterIds[s]);
        return new LoraBatch(device, rows);
    }

    /// <summary>A batch with one adapter index per token row (−1: no adapter), e.g. for decode.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is below −1.</exception>
    public static LoraBatch FromTokens(ComputeDevice device, ReadOnlySpan<int> adapterIndices)
    {
        ArgumentNullException.ThrowIfNull(device);
        for (int i = 0; i < adapterIndices.Length; i++)
            if (adapterIndices[i] < -1)
                throw new ArgumentOutOfRangeException(nameof(adapterIndices), $"adapterIndices[{i}] = {adapterIndices[i]}; ids are ≥ 0, or −1 for no adapter.");
        return new LoraBatch(device, adapterIndices.ToArray());
    }

    /// <summary>The device holding the table.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Token rows (M).</summary>
    public int Rows { get; }

    /// <summary>The largest adapter id used (−1 when no row has an adapter).</summary>
    public int MaxAdapterId { get; }

    /// <summary>The adapter of every row (a host copy, −1 = none).</summary>
    public ReadOnlySpan<int> RowAdapters => hostTable;

    internal ArrayView<int> Table => table.ReadOnlySpan.View.AsContiguous();

    /// <summary>Throws unless this batch fits <paramref name="adapters"/> and an input of <paramref name="rows"/> rows.</summary>
    internal void Validate<T>(LoraAdapterSet<T> adapters, int rows, string name) where T : unmanaged
    {
        ObjectDisposedException.ThrowIf(table.IsDisposed, this);
        adapters.ThrowIfDisposed();
        if (Rows != rows)
            throw new ArgumentException($"{name} covers {Rows} rows but the input has {rows}.", name);
        if (MaxAdapterId >= adapters.Count)
            throw new ArgumentOutOfRangeException(name, $"{name} uses adapter id {MaxAdapterId} but the adapter set has {adapters.Count} adapters (ids 0…{adapters.Count - 1}).");
        if (!ReferenceEquals(Device, adapters.Device))
            throw new ArgumentException($"{name} lives on {Device.Name} but the adapters on {adapters.Device.Name}.", name);
    }

    /// <summary>Releases the device table.</summary>
    public void Dispose() => table.Dispose();
}
