using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Optimizers;

/// <summary>
/// bitsandbytes' <c>percentile_clipping</c> for one parameter tensor: a history of its last 100 squared gradient norms
/// on the device (every entry set to the first step's norm), and per step the gradient scale
/// <c>min(1, clip / ‖g‖)</c> with clip = √(the <see cref="Percentile"/>-th smallest entry of the history). A step that
/// is given this object (<see cref="OptimizerStepOptions.Clipping"/>) multiplies its gradients by that scale, read on
/// the device: no host synchronization.
/// </summary>
/// <remarks>
/// Call <see cref="Observe{TGrad}"/> (or, for a parameter sharded across ranks, <see cref="ObservePartials"/> with the
/// gathered per-block partials of <see cref="SquaredNormPartials{TGrad}"/>) once per step before the step; bitsandbytes
/// does this inside its step. The squared norm is reduced in an order fixed by the block size alone
/// (<see cref="GradientNormKernels"/>), so shards and the whole tensor get the same bits. Differences from
/// bitsandbytes: its norm is a float atomicAdd (order-dependent), ours is deterministic; a non-finite norm (a NaN/Inf
/// gradient or an f32 overflow of ‖g‖²) is not recorded and gives scale 0 for that step, where bitsandbytes records
/// NaN in the history for the next 100 steps.
/// </remarks>
public sealed class PercentileClipping : IDisposable
{
    /// <summary>Gradient norms remembered (bitsandbytes' <c>gnorm_vec</c> length).</summary>
    public const int HistoryLength = 100;

    private readonly DeviceTensor<float> history;
    private readonly DeviceTensor<float> result;
    private readonly DeviceTensor<float> partials;
    private bool disposed;

    private PercentileClipping(ComputeDevice device, long length, int blockSize, int percentile)
    {
        Device = device;
        Length = length;
        BlockSize = blockSize;
        Percentile = percentile;
        BlockCount = (length + blockSize - 1) / blockSize;
        history = device.Allocate<float>(HistoryLength);
        result = device.Allocate<float>(GradientNormKernels.ResultLength);
        partials = device.Allocate<float>((nint)BlockCount);
    }

    /// <summary>A zero history for a parameter of <paramref name="length"/> elements.</summary>
    /// <param name="device">The device of the parameter.</param>
    /// <param name="length">Elements of the whole parameter.</param>
    /// <param name="percentile">0…99: the rank in the sorted history that sets the clip value (bitsandbytes' argument; 100 there means off).</param>
    /// <param name="blockSize">Elements per squared-norm partial; a shard boundary must be a multiple of it. Use the state's block size.</param>
    public static PercentileClipping Create(ComputeDevice device, long length, int percentile = 5, int blockSize = Optimizer8BitState.DefaultBlockSize)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "A parameter has at least one element.");
        if (percentile < 0 || percentile >= HistoryLength)
            throw new ArgumentOutOfRangeException(nameof(percentile), percentile, $"percentile must lie in [0, {HistoryLength - 1}].");
        if (blockSize < 1) throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "blockSize must be ≥ 1.");
        var c = new PercentileClipping(device, length, blockSize, percentile);
        try
        {
            c.history.Span.Clear();
            c.result.CopyFrom([1f, 0f, 0f]);
        }
        catch
        {
            c.Dispose();
            throw;
        }
        return c;
    }

    /// <summary>The device.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Elements of the whole parameter.</summary>
    public long Length { get; }

    /// <summary>Elements per squared-norm partial.</summary>
    public int BlockSize { get; }

    /// <summary>Number of partials, ⌈Length / BlockSize⌉.</summary>
    public long BlockCount { get; }

    /// <summary>The rank in the sorted history that sets the clip value.</summary>
    public int Percentile { get; }

    /// <summary>[gradient scale, ‖g‖, clip value] of the last observation (scale 1 before the first).</summary>
    public ReadOnlyDeviceTensorSpan<float> Result
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return result.ReadOnlySpan;
        }
    }

    /// <summary>The squared norms remembered (host copy; waits for the device's stream).</summary>
    public float[] History()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return history.ToArray();
    }

    /// <summary>Records the squared norm of the whole parameter's <paramref name="gradients"/> for <paramref name="step"/> and sets the scale.</summary>
    /// <param name="gradients">The gradients of the whole parameter (Length elements; f32, f16 or bf16).</param>
    /// <param name="step">1-based step (step 1 fills the whole history).</param>
    public void Observe<TGrad>(ReadOnlyDeviceTensorSpan<TGrad> gradients, long step) where TGrad : unmanaged
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        RequireStep(step);
        if (gradients.IsEmptyView) throw new ArgumentException("gradients is an empty (default) view.", nameof(gradients));
        Require.SameDevice(Device, gradients.Device, nameof(gradients));
        Require.Length(gradients.FlattenedLength, Length, nameof(gradients), $"the {Length} elements this clipping state was created for");
        SquaredNormPartials(gradients, BlockSize, partials.Span);
        Finish(partials.ReadOnlySpan, step);
    }

    /// <summary>
    /// Records a squared norm given as its per-block partials (all <see cref="BlockCount"/> of them, in order: e.g. the
    /// shards' <see cref="SquaredNormPartials{TGrad}"/> gathered from every rank) and sets the scale.
    /// </summary>
    /// <param name="squaredNormPartials">BlockCount f32 partials on this device.</param>
    /// <param name="step">1-based step.</param>
    public void ObservePartials(ReadOnlyDeviceTensorSpan<float> squaredNormPartials, long step)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        RequireStep(step);
        if (squaredNormPartials.IsEmptyView) throw new ArgumentException("squaredNormPartials is an empty (default) view.", nameof(squaredNormPartials));
        Require.SameDevice(Device, squaredNormPartials.Device, nameof(squaredNormPartials));
        Require.Dense(squaredNormPartials, nameof(squaredNormPartials));
        Require.Length(squaredNormPartials.FlattenedLength, BlockCount, nameof(squaredNormPartials), $"the {BlockCount} blocks of {BlockSize} elements");
        Finish(squaredNormPartials, step);
    }

    /// <summary>
    /// Per block of <paramref name="blockSize"/> elements of <paramref name="gradients"/>, the f32 sum of its f32 squares
    /// in element order, written to <paramref name="partials"/> (⌈length / blockSize⌉ floats). A shard that starts at a
    /// block boundary of the whole parameter writes exactly the whole parameter's partials of its blocks.
    /// </summary>
    /// <param name="gradients">Gradients (f32, f16 or bf16), dense.</param>
    /// <param name="blockSize">Elements per partial (≥ 1).</param>
    /// <param name="partials">Destination, on the gradients' device.</param>
    public static void SquaredNormPartials<TGrad>(ReadOnlyDeviceTensorSpan<TGrad> gradients, int blockSize, DeviceTensorSpan<float> partials)
        where TGrad : unmanaged
    {
        Require.Supported<TGrad>(nameof(gradients));
        if (gradients.IsEmptyView) throw new ArgumentException("gradients is an empty (default) view.", nameof(gradients));
        if (partials.IsEmptyView) throw new ArgumentException("partials is an empty (default) view.", nameof(partials));
        if (blockSize < 1) throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "blockSize must be ≥ 1.");
        var device = gradients.Device;
        Require.SameDevice(device, partials.Device, nameof(partials));
        Require.Dense(gradients, nameof(gradients));
        Require.Dense(partials, nameof(partials));
        long length = gradients.FlattenedLength;
        long blocks = (length + blockSize - 1) / blockSize;
        Require.Length(partials.FlattenedLength, blocks, nameof(partials), $"⌈{length} / {blockSize}⌉ blocks");
        Require.Disjoint(Footprint.Of(partials, nameof(partials)), Footprint.Of(gradients, nameof(gradients)));
        var element = Optimizer8Bit.GradientElement(typeof(TGrad));
        var kernel = device.GetKernel(("optim8.norm-partials", typeof(TGrad)), acc =>
            acc.LoadCatalogKernel(typeof(GradientNormKernels)
                .GetMethod(nameof(GradientNormKernels.SquaredNormPartials), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(typeof(TGrad), element)
                .CreateDelegate<Action<ArrayView<TGrad>, ArrayView<float>, long, int>>()));
        int groupSize = device.ElementwiseGroupSize;
        kernel(device.Stream, new KernelConfig(device.GroupsFor(blocks, groupSize), groupSize),
            gradients.View.AsContiguous(), partials.View.AsContiguous(), length, blockSize);
    }

    /// <summary>The device-side scale the step reads (element 0 of <see cref="Result"/>).</summary>
    internal ArrayView<float> ScaleView => result.Span.View.AsContiguous().SubView(0, 1);

    /// <summary>Releases the device buffers.</summary>
    public void Dispose()
    {
        disposed = true;
        history?.Dispose();
        result?.Dispose();
        partials?.Dispose();
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    private void Finish(ReadOnlyDeviceTensorSpan<float> squaredNormPartials, long step)
    {
        var kernel = Device.GetKernel("optim8.clip-finish", acc =>
            acc.LoadCatalogKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, long, int>(GradientNormKernels.Finish));
        int groupSize = Math.Min(GradientNormKernels.FinishGroupSize, PowerOfTwoAtMost(Device.Accelerator.MaxNumThreadsPerGroup));
        kernel(Device.Stream, new KernelConfig(1, groupSize), squaredNormPartials.View.AsContiguous(),
            history.Span.View.AsContiguous(), result.Span.View.AsContiguous(), step, Percentile);
    }

    private static int PowerOfTwoAtMost(int x)
    {
        int p = 1;
        while (p * 2 <= x) p *= 2;
        return p;
    }

    private static void RequireStep(long step)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "Steps are counted from 1.");
    }
}
