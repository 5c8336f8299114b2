namespace Kernels.Optimizers;

/// <summary>
/// A host copy of an <see cref="Optimizer8BitState"/>: what checkpoints store and what the CPU references update in
/// place. Quantized states hold, per state, one code byte per element and one fp32 scale per block; f32 states hold one
/// float per element. The constructor validates every length and value, so a corrupt checkpoint fails here, before any
/// kernel reads it.
/// </summary>
public sealed class Optimizer8BitStateSnapshot
{
    /// <summary>Wraps (does not copy) the arrays after validating them.</summary>
    /// <param name="kind">The optimizer the states belong to (fixes the state count and the code book of each state).</param>
    /// <param name="length">Elements of the parameter tensor (≥ 1).</param>
    /// <param name="blockSize">Quantization block size (see <see cref="Optimizer8BitState.IsSupportedBlockSize"/>).</param>
    /// <param name="codes">Quantized: one array of <paramref name="length"/> codes per state; null for f32 states.</param>
    /// <param name="absmax">Quantized: one array of ⌈length / blockSize⌉ finite, non-negative scales per state; null for f32 states.</param>
    /// <param name="values">f32: one array of <paramref name="length"/> finite values per state; null for quantized states.</param>
    public Optimizer8BitStateSnapshot(OptimizerKind kind, int length, int blockSize,
        byte[][]? codes, float[][]? absmax, float[][]? values)
    {
        OptimizerKinds.RequireDefined(kind, nameof(kind));
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "A state needs at least one element.");
        Optimizer8BitState.RequireBlockSize(blockSize, nameof(blockSize));
        int states = kind.StateCount();
        long blocks = (length + (long)blockSize - 1) / blockSize;
        bool quantized = codes is not null || absmax is not null;
        if (quantized)
        {
            if (values is not null)
                throw new ArgumentException("A state is either quantized (codes + absmax) or f32 (values), not both.", nameof(values));
            if (codes is null || absmax is null)
                throw new ArgumentException($"A quantized {kind} state needs both codes and absmax; one is missing.",
                    codes is null ? nameof(codes) : nameof(absmax));
            RequireCount(codes.Length, states, nameof(codes), kind);
            RequireCount(absmax.Length, states, nameof(absmax), kind);
            for (int s = 0; s < states; s++)
            {
                if (codes[s] is null) throw new ArgumentException($"codes[{s}] is missing ({kind} has {states} state(s)).", nameof(codes));
                if (absmax[s] is null) throw new ArgumentException($"absmax[{s}] is missing ({kind} has {states} state(s)).", nameof(absmax));
                if (codes[s].Length != length)
                    throw new ArgumentException($"codes[{s}] has {codes[s].Length} elements but the state has {length}.", nameof(codes));
                if (absmax[s].Length != blocks)
                    throw new ArgumentException(
                        $"absmax[{s}] has {absmax[s].Length} elements but {length} elements in blocks of {blockSize} need {blocks}.", nameof(absmax));
                for (int b = 0; b < blocks; b++)
                    if (!float.IsFinite(absmax[s][b]) || absmax[s][b] < 0)
                        throw new ArgumentException($"absmax[{s}][{b}] = {absmax[s][b]} is not a finite, non-negative scale.", nameof(absmax));
            }
        }
        else
        {
            if (values is null)
                throw new ArgumentException($"A {kind} state needs either codes + absmax or values; all are missing.", nameof(values));
            RequireCount(values.Length, states, nameof(values), kind);
            for (int s = 0; s < states; s++)
            {
                if (values[s] is null) throw new ArgumentException($"values[{s}] is missing ({kind} has {states} state(s)).", nameof(values));
                if (values[s].Length != length)
                    throw new ArgumentException($"values[{s}] has {values[s].Length} elements but the state has {length}.", nameof(values));
                for (int i = 0; i < length; i++)
                    if (!float.IsFinite(values[s][i]))
                        throw new ArgumentException($"values[{s}][{i}] = {values[s][i]} is not finite.", nameof(values));
            }
        }
        Kind = kind;
        Length = length;
        BlockSize = blockSize;
        Codes = codes;
        Absmax = absmax;
        Values = values;
    }

    /// <summary>The optimizer.</summary>
    public OptimizerKind Kind { get; }

    /// <summary>Elements of the parameter tensor.</summary>
    public int Length { get; }

    /// <summary>Quantization block size (kept for f32 states too, so a round trip restores it).</summary>
    public int BlockSize { get; }

    /// <summary>Number of states (<see cref="OptimizerKinds.StateCount"/>).</summary>
    public int StateCount => Kind.StateCount();

    /// <summary>True for 8-bit states (<see cref="Codes"/> and <see cref="Absmax"/>), false for f32 states (<see cref="Values"/>).</summary>
    public bool IsQuantized => Codes is not null;

    /// <summary>Number of quantization blocks, ⌈Length / BlockSize⌉.</summary>
    public int BlockCount => (int)((Length + (long)BlockSize - 1) / BlockSize);

    /// <summary>Codes per state (quantized), else null.</summary>
    public byte[][]? Codes { get; }

    /// <summary>Per-block dequantization scales per state (quantized), else null. See <see cref="Optimizer8BitState"/> for the negative-extreme rule.</summary>
    public float[][]? Absmax { get; }

    /// <summary>f32 values per state (f32 states), else null.</summary>
    public float[][]? Values { get; }

    /// <summary>The dequantized value of state <paramref name="state"/> at <paramref name="index"/> (code value · block scale, or the f32 value).</summary>
    public float Dequantize(int state, int index)
    {
        if (Values is not null) return Values[state][index];
        var book = Optimizer8BitState.BookFor(Kind, state);
        return book.Values[Codes![state][index]] * Absmax![state][index / BlockSize];
    }

    /// <summary>
    /// The states of elements [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>) as a
    /// snapshot of their own (a copy): the shard's codes and its blocks' scales, or its f32 values. The range must be a
    /// shard (<see cref="Optimizer8BitState.CreateShard"/>): block-aligned start, block-aligned end unless it ends here.
    /// </summary>
    public Optimizer8BitStateSnapshot Slice(int start, int length)
    {
        Optimizer8BitState.RequireShard(Length, start, length, BlockSize);
        int firstBlock = start / BlockSize, blocks = (length + BlockSize - 1) / BlockSize;
        return new(Kind, length, BlockSize,
            Codes?.Select(c => c.AsSpan(start, length).ToArray()).ToArray(),
            Absmax?.Select(a => a.AsSpan(firstBlock, blocks).ToArray()).ToArray(),
            Values?.Select(v => v.AsSpan(start, length).ToArray()).ToArray());
    }

    /// <summary>A deep copy.</summary>
    public Optimizer8BitStateSnapshot Clone() => new(Kind, Length, BlockSize,
        Codes?.Select(a => (byte[])a.Clone()).ToArray(), Absmax?.Select(a => (float[])a.Clone()).ToArray(),
        Values?.Select(a => (float[])a.Clone()).ToArray());

    private static void RequireCount(int actual, int states, string name, OptimizerKind kind)
    {
        if (actual != states) throw new ArgumentException($"{name} holds {actual} state(s) but {kind} has {states}.", name);
    }
}
