using ILGPU;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;

namespace Kernels.Optimizers;

/// <summary>
/// The optimizer states of one parameter tensor on one device: either 8-bit block-wise (per state, one uint8 code per
/// element and one fp32 scale per block of <see cref="BlockSize"/> elements) or, for tensors shorter than the
/// quantization threshold, plain f32 (as bitsandbytes' <c>min_8bit_size</c>; quantizing a few thousand elements
/// saves little and costs accuracy). The state knows which it holds (<see cref="IsQuantized"/>).
/// </summary>
/// <remarks>
/// Code books: signed states (Adam's m, the momentum of Momentum and Lion) use bitsandbytes' signed dynamic map,
/// non-negative states (Adam's v, RMSprop's and Adagrad's accumulators) the unsigned one
/// (<see cref="OptimizerKinds.IsSigned"/>). Each block's fp32 "absmax" is its dequantization scale: the block's
/// largest magnitude, divided by 0.99296874 when that extreme is a negative signed state (the signed map has no −1.0;
/// see <see cref="Optimizer8Bit"/>). A fresh state is all zeros (code bytes 0 with
/// scale 0, which dequantize to ±0, as in bitsandbytes). The state is not thread-safe; steps on it are ordered by the device's stream.
/// </remarks>
public sealed class Optimizer8BitState : IDisposable
{
    /// <summary>bitsandbytes' block size (since v0.44).</summary>
    public const int DefaultBlockSize = 256;

    /// <summary>Tensors with fewer elements keep f32 states (bitsandbytes' <c>min_8bit_size</c>).</summary>
    public const long DefaultMinQuantizedLength = 4096;

    /// <summary>Smallest supported block size.</summary>
    public const int MinBlockSize = 32;

    /// <summary>Largest supported block size.</summary>
    public const int MaxBlockSize = 4096;

    private readonly DeviceTensor<byte>[] codes;
    private readonly DeviceTensor<float>[] absmax;
    private readonly DeviceTensor<float>[] values;
    private readonly DeviceTensor<int> unusedCounter;
    private readonly DeviceTensor<float> unitScale;
    private bool disposed;

    private Optimizer8BitState(ComputeDevice device, OptimizerKind kind, long length, int blockSize, bool quantized)
    {
        Device = device;
        Kind = kind;
        Length = length;
        BlockSize = blockSize;
        IsQuantized = quantized;
        BlockCount = (length + blockSize - 1) / blockSize;
        int n = kind.StateCount();
        codes = new DeviceTensor<byte>[quantized ? n : 0];
        absmax = new DeviceTensor<float>[quantized ? n : 0];
        values = new DeviceTensor<float>[quantized ? 0 : n];
        unusedCounter = device.Allocate<int>(1);
        unitScale = device.Allocate<float>(1);
        try
        {
            unitScale.CopyFrom([1f]);
            for (int s = 0; s < codes.Length; s++)
            {
                codes[s] = device.Allocate<byte>((nint)length);
                absmax[s] = device.Allocate<float>((nint)BlockCount);
            }
            for (int s = 0; s < values.Length; s++) values[s] = device.Allocate<float>((nint)length);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Allocates zero states for a parameter tensor of <paramref name="length"/> elements: 8-bit when
    /// <paramref name="length"/> ≥ <paramref name="minQuantizedLength"/>, else f32.
    /// </summary>
    public static Optimizer8BitState Create(ComputeDevice device, OptimizerKind kind, long length,
        int blockSize = DefaultBlockSize, long minQuantizedLength = DefaultMinQuantizedLength)
    {
        ArgumentNullException.ThrowIfNull(device);
        OptimizerKinds.RequireDefined(kind, nameof(kind));
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "A state needs at least one element.");
        RequireBlockSize(blockSize, nameof(blockSize));
        if (minQuantizedLength < 0)
            throw new ArgumentOutOfRangeException(nameof(minQuantizedLength), minQuantizedLength, "The threshold must be ≥ 0.");
        return Zeroed(new Optimizer8BitState(device, kind, length, blockSize, length >= minQuantizedLength));
    }

    /// <summary>
    /// Zero states for the shard [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>) of a
    /// parameter of <paramref name="wholeLength"/> elements split across ranks (ZeRO 1/2). The shard must start on a
    /// block boundary and, unless it is the last, end on one, so its blocks are the whole parameter's blocks; whether it
    /// is 8-bit is decided by <paramref name="wholeLength"/> (every shard of a parameter keeps the same kind of state).
    /// Stepping each shard with <see cref="OptimizerStepOptions.ElementOffset"/> = <paramref name="start"/> (and, for
    /// percentile clipping, the whole parameter's <see cref="PercentileClipping"/>) gives exactly the bits of the
    /// unsharded step: codes, scales and parameters.
    /// </summary>
    public static Optimizer8BitState CreateShard(ComputeDevice device, OptimizerKind kind, long wholeLength, long start, long length,
        int blockSize = DefaultBlockSize, long minQuantizedLength = DefaultMinQuantizedLength)
    {
        ArgumentNullException.ThrowIfNull(device);
        OptimizerKinds.RequireDefined(kind, nameof(kind));
        RequireBlockSize(blockSize, nameof(blockSize));
        RequireShard(wholeLength, start, length, blockSize);
        if (minQuantizedLength < 0)
            throw new ArgumentOutOfRangeException(nameof(minQuantizedLength), minQuantizedLength, "The threshold must be ≥ 0.");
        return Zeroed(new Optimizer8BitState(device, kind, length, blockSize, wholeLength >= minQuantizedLength) { ShardStart = start });
    }

    /// <summary>Clears a new state's buffers (disposing it on failure) and returns it.</summary>
    private static Optimizer8BitState Zeroed(Optimizer8BitState state)
    {
        try
        {
            for (int s = 0; s < state.codes.Length; s++)
            {
                // Scale 0 makes every code dequantize to ±0, so zero bytes are a zero state (as in bitsandbytes).
                state.codes[s].Span.Clear();
                state.absmax[s].Span.Clear();
            }
            foreach (var v in state.values) v.Span.Clear();
        }
        catch
        {
            state.Dispose();
            throw;
        }
        return state;
    }

    /// <summary>Validates a shard of a parameter: block-aligned start, block-aligned end unless it ends the parameter.</summary>
    internal static void RequireShard(long wholeLength, long start, long length, int blockSize)
    {
        if (wholeLength < 1) throw new ArgumentOutOfRangeException(nameof(wholeLength), wholeLength, "A parameter has at least one element.");
        if (start < 0 || start >= wholeLength || start % blockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(start), start,
                $"A shard starts inside the parameter of {wholeLength} elements, on a multiple of the block size {blockSize}.");
        if (length < 1 || length > wholeLength - start || (start + length != wholeLength && length % blockSize != 0))
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"A shard at {start} of a parameter of {wholeLength} elements ends on a multiple of the block size {blockSize} or at the end.");
    }

    /// <summary>Index of element 0 in the whole parameter: 0, or the start of a shard made by <see cref="CreateShard"/>.</summary>
    public long ShardStart { get; private init; }

    /// <summary>Uploads a validated snapshot (e.g. from a checkpoint) to <paramref name="device"/>; the round trip with <see cref="Export"/> is exact.</summary>
    /// <param name="device">The target device.</param>
    /// <param name="snapshot">The states (for a shard, e.g. <see cref="Optimizer8BitStateSnapshot.Slice"/> of the whole's).</param>
    /// <param name="shardStart">For a shard: its first element's index in the whole parameter (a multiple of the block size); else 0.</param>
    public static Optimizer8BitState Import(ComputeDevice device, Optimizer8BitStateSnapshot snapshot, long shardStart = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(snapshot);
        if (shardStart < 0 || shardStart % snapshot.BlockSize != 0)
            throw new ArgumentOutOfRangeException(nameof(shardStart), shardStart, $"A shard starts on a multiple of the block size {snapshot.BlockSize}.");
        var state = new Optimizer8BitState(device, snapshot.Kind, snapshot.Length, snapshot.BlockSize, snapshot.IsQuantized) { ShardStart = shardStart };
        try
        {
            for (int s = 0; s < state.codes.Length; s++)
            {
                state.codes[s].CopyFrom(snapshot.Codes![s]);
                state.absmax[s].CopyFrom(snapshot.Absmax![s]);
            }
            for (int s = 0; s < state.values.Length; s++) state.values[s].CopyFrom(snapshot.Values![s]);
        }
        catch
        {
            state.Dispose();
            throw;
        }
        return state;
    }

    /// <summary>A zero host state (what <see cref="Create"/> makes on a device), e.g. for the CPU reference.</summary>
    public static Optimizer8BitStateSnapshot ZeroSnapshot(OptimizerKind kind, int length, int blockSize, bool quantized)
    {
        OptimizerKinds.RequireDefined(kind, nameof(kind));
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "A state needs at least one element.");
        RequireBlockSize(blockSize, nameof(blockSize));
        int n = kind.StateCount(), blocks = (int)((length + (long)blockSize - 1) / blockSize);
        return quantized
            ? new Optimizer8BitStateSnapshot(kind, length, blockSize,
                Enumerable.Range(0, n).Select(_ => new byte[length]).ToArray(),
                Enumerable.Range(0, n).Select(_ => new float[blocks]).ToArray(), null)
            : new Optimizer8BitStateSnapshot(kind, length, blockSize, null, null,
                Enumerable.Range(0, n).Select(_ => new float[length]).ToArray());
    }

    /// <summary>Copies the states to the host (waits for the device's stream).</summary>
    public Optimizer8BitStateSnapshot Export()
    {
        ThrowIfDisposed();
        if (Length > Array.MaxLength) throw new InvalidOperationException($"A state of {Length} elements does not fit in host arrays.");
        return IsQuantized
            ? new Optimizer8BitStateSnapshot(Kind, (int)Length, BlockSize,
                codes.Select(c => c.ToArray()).ToArray(), absmax.Select(a => a.ToArray()).ToArray(), null)
            : new Optimizer8BitStateSnapshot(Kind, (int)Length, BlockSize, null, null, values.Select(v => v.ToArray()).ToArray());
    }

    /// <summary>The device holding the states.</summary>
    public ComputeDevice Device { get; }

    /// <summary>The optimizer.</summary>
    public OptimizerKind Kind { get; }

    /// <summary>Elements of the parameter tensor.</summary>
    public long Length { get; }

    /// <summary>Quantization block size.</summary>
    public int BlockSize { get; }

    /// <summary>Number of blocks, ⌈Length / BlockSize⌉.</summary>
    public long BlockCount { get; }

    /// <summary>True for 8-bit states, false for f32 states.</summary>
    public bool IsQuantized { get; }

    /// <summary>Number of states (<see cref="OptimizerKinds.StateCount"/>).</summary>
    public int StateCount => Kind.StateCount();

    /// <summary>Device bytes the states occupy.</summary>
    public long ByteLength => IsQuantized ? StateCount * (Length + 4 * BlockCount) : StateCount * 4 * Length;

    /// <summary>The codes of state <paramref name="state"/> (quantized states only).</summary>
    public ReadOnlyDeviceTensorSpan<byte> Codes(int state) => Quantized(codes, state).ReadOnlySpan;

    /// <summary>The per-block scales of state <paramref name="state"/> (quantized states only).</summary>
    public ReadOnlyDeviceTensorSpan<float> Absmax(int state) => Quantized(absmax, state).ReadOnlySpan;

    /// <summary>The values of state <paramref name="state"/> (f32 states only).</summary>
    public ReadOnlyDeviceTensorSpan<float> Values(int state)
    {
        ThrowIfDisposed();
        if (IsQuantized) throw new InvalidOperationException("This state is quantized: read Codes and Absmax.");
        RequireIndex(state);
        return values[state].ReadOnlySpan;
    }

    /// <summary>True when the 8-bit step supports <paramref name="blockSize"/>: a multiple of 4 from 32 to 4096.</summary>
    public static bool IsSupportedBlockSize(int blockSize) =>
        blockSize >= MinBlockSize && blockSize <= MaxBlockSize && blockSize % 4 == 0;

    /// <summary>Releases the device buffers.</summary>
    public void Dispose()
    {
        disposed = true;
        foreach (var t in codes) t?.Dispose();
        foreach (var t in absmax) t?.Dispose();
        foreach (var t in values) t?.Dispose();
        unusedCounter?.Dispose();
        unitScale?.Dispose();
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"Optimizer8BitState({Kind}, {Length} elements, {(IsQuantized ? $"8-bit, B={BlockSize}" : "f32")}) on {Device.Name}";

    internal static CodeBook BookFor(OptimizerKind kind, int state) =>
        kind.IsSigned(state) ? CodeBook.DynamicSigned : CodeBook.DynamicUnsigned;

    internal static void RequireBlockSize(int blockSize, string name)
    {
        if (!IsSupportedBlockSize(blockSize))
            throw new ArgumentOutOfRangeException(name, blockSize,
                $"Block size must be a multiple of 4 from {MinBlockSize} to {MaxBlockSize}.");
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    // Kernel views. A one-state optimizer gets state 0's buffers as its (never read) second operand.
    internal ArrayView<byte> CodesView(int s) => codes[Math.Min(s, codes.Length - 1)].Span.View.AsContiguous();
    internal ArrayView<float> AbsmaxView(int s) => absmax[Math.Min(s, absmax.Length - 1)].Span.View.AsContiguous();
    /// <summary>The counter operand of a step that does not count skipped elements (never written).</summary>
    internal ArrayView<int> DummyCounter => unusedCounter.Span.View.AsContiguous();
    /// <summary>The clipping-scale operand of a step without percentile clipping: one 1.0f.</summary>
    internal ArrayView<float> UnitScale => unitScale.Span.View.AsContiguous();
    internal ArrayView<float> ValuesView(int s) => values[Math.Min(s, values.Length - 1)].Span.View.AsContiguous();

    private DeviceTensor<T> Quantized<T>(DeviceTensor<T>[] buffers, int state) where T : unmanaged
    {
        ThrowIfDisposed();
        if (!IsQuantized) throw new InvalidOperationException("This state holds f32 values: read Values.");
        RequireIndex(state);
        return buffers[state];
    }

    private void RequireIndex(int state)
    {
        if ((uint)state >= (uint)StateCount)
            throw new ArgumentOutOfRangeException(nameof(state), state, $"{Kind} has {StateCount} state(s).");
    }
}
