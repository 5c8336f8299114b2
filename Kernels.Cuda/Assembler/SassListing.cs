using System.Globalization;
using System.Text.RegularExpressions;

namespace Kernels.Cuda.Assembler;

/// <summary>One SASS instruction: its byte address, predicate guard, opcode with modifiers, and operands.</summary>
/// <param name="Address">Byte offset in the function.</param>
/// <param name="Guard">The predicate guard (<c>@P0</c>, <c>@!P3</c>) or empty.</param>
/// <param name="Opcode">The opcode with its modifiers, e.g. <c>HMMA.16816.F32</c>, <c>LDG.E.128.CONSTANT</c>.</param>
/// <param name="Operands">The operand text.</param>
public sealed record SassInstruction(int Address, string Guard, string Opcode, string Operands)
{
    /// <summary>Local-memory traffic: <c>LDL</c> / <c>STL</c> (stack or spills).</summary>
    public bool IsLocal => Opcode.StartsWith("LDL", StringComparison.Ordinal) || Opcode.StartsWith("STL", StringComparison.Ordinal);

    /// <summary>A tensor-core m16n8k16 multiply with f32 accumulation (f16 or bf16 inputs).</summary>
    public bool IsHmma => Opcode.StartsWith("HMMA.16816.F32", StringComparison.Ordinal);

    /// <summary>An ldmatrix load from shared memory.</summary>
    public bool IsLdsm => Opcode.StartsWith("LDSM", StringComparison.Ordinal);

    /// <summary>A 16-byte asynchronous copy that bypasses L1 (<c>cp.async.cg … 16</c>).</summary>
    public bool IsCpAsync16 => Opcode.StartsWith("LDGSTS", StringComparison.Ordinal) && HasModifier("BYPASS") && HasModifier("128");

    /// <summary>A 16-byte global load (<c>LDG.E.128</c>, any cache qualifier).</summary>
    public bool IsLoad16 => Opcode.StartsWith("LDG.E", StringComparison.Ordinal) && HasModifier("128");

    /// <summary>Bytes a global load or asynchronous copy moves (0 for other instructions).</summary>
    public int GlobalBytes
    {
        get
        {
            if (!Opcode.StartsWith("LDG", StringComparison.Ordinal)) return 0;
            if (HasModifier("128")) return 16;
            if (HasModifier("64")) return 8;
            if (HasModifier("U16") || HasModifier("S16")) return 2;
            if (HasModifier("U8") || HasModifier("S8")) return 1;
            return 4;
        }
    }

    /// <summary>An unconditional or predicated branch and its target address.</summary>
    public int? BranchTarget => Opcode == "BRA" && Operands.StartsWith("0x", StringComparison.Ordinal)
        && int.TryParse(Operands.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int target)
            ? target
            : null;

    private bool HasModifier(string modifier) => Opcode.Split('.').AsSpan(1).Contains(modifier);
}

/// <summary>A loop in SASS: the instructions from a backward branch's target to the branch.</summary>
/// <param name="Start">Address of the loop's first instruction (the branch target).</param>
/// <param name="End">Address of the backward branch.</param>
/// <param name="Body">The instructions of the loop, nested loops included.</param>
public sealed record SassLoop(int Start, int End, IReadOnlyList<SassInstruction> Body)
{
    /// <summary>Instructions in the loop.</summary>
    public int Instructions => Body.Count;

    /// <summary>HMMA instructions in the loop.</summary>
    public int Hmma => Body.Count(i => i.IsHmma);

    /// <summary>Global bytes loaded (LDG and LDGSTS) per iteration, by the loads' widths.</summary>
    public int GlobalBytes => Body.Sum(i => i.GlobalBytes);

    /// <summary>True when <paramref name="other"/> lies inside this loop.</summary>
    public bool Contains(SassLoop other) => other.Start >= Start && other.End <= End && other != this;
}

/// <summary>A parsed <c>cuobjdump -sass</c> listing of one function.</summary>
public sealed partial class SassListing
{
    private SassListing(IReadOnlyList<SassInstruction> instructions, string text)
    {
        Instructions = instructions;
        Text = text;
        var loops = new List<SassLoop>();
        foreach (var branch in instructions)
        {
            if (branch.BranchTarget is not { } target || target >= branch.Address) continue;
            loops.Add(new SassLoop(target, branch.Address,
                instructions.Where(i => i.Address >= target && i.Address <= branch.Address).ToArray()));
        }
        Loops = loops;
    }

    /// <summary>Every instruction, in address order.</summary>
    public IReadOnlyList<SassInstruction> Instructions { get; }

    /// <summary>Every loop (one per backward branch).</summary>
    public IReadOnlyList<SassLoop> Loops { get; }

    /// <summary>The raw listing.</summary>
    public string Text { get; }

    /// <summary>Instructions that satisfy <paramref name="predicate"/>.</summary>
    public int Count(Func<SassInstruction, bool> predicate) => Instructions.Count(predicate);

    /// <summary>The smallest loop holding an instruction that satisfies <paramref name="predicate"/>, or null.</summary>
    public SassLoop? InnermostLoopWith(Func<SassInstruction, bool> predicate) =>
        Loops.Where(l => l.Body.Any(predicate)).OrderBy(l => l.Instructions).FirstOrDefault();

    /// <summary>The smallest loop that strictly contains <paramref name="loop"/>, or null.</summary>
    public SassLoop? Enclosing(SassLoop loop) =>
        Loops.Where(l => l.Contains(loop) && l.Instructions > loop.Instructions).OrderBy(l => l.Instructions).FirstOrDefault();

    /// <summary>Parses the text <c>cuobjdump -sass</c> prints for a single-function cubin.</summary>
    public static SassListing Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var instructions = new List<SassInstruction>();
        foreach (Match m in InstructionPattern().Matches(text))
            instructions.Add(new SassInstruction(int.Parse(m.Groups["addr"].Value, NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                m.Groups["guard"].Value, m.Groups["op"].Value, m.Groups["operands"].Value.Trim()));
        return new SassListing(instructions, text);
    }

    [GeneratedRegex(@"^\s*/\*(?<addr>[0-9a-f]{4,})\*/\s+(?:(?<guard>@!?U?P[T0-9]+)\s+)?(?<op>[A-Z][A-Z0-9_.]*)(?<operands>[^;]*);", RegexOptions.Multiline)]
    private static partial Regex InstructionPattern();
}
