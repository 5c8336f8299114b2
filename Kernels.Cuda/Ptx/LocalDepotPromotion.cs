using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Kernels.Cuda.Ptx;

/// <summary>What <see cref="LocalDepotPromotion.Apply"/> did to one PTX module.</summary>
/// <param name="Promoted">Depots turned into registers.</param>
/// <param name="Kept">Depots left in local memory because they are not plain scalar operands (arrays, address taken,
/// offsets, vector accesses, a width that differs from the depot's size).</param>
/// <param name="KeptNames">The names of the kept depots, for diagnostics.</param>
public sealed record DepotPromotionReport(int Promoted, int Kept, IReadOnlyList<string> KeptNames);

/// <summary>
/// Turns ILGPU's one-scalar <c>.local</c> depots back into registers. ILGPU 1.5.3 lowers every <c>CudaAsm.EmitRef</c>
/// operand (and <c>Emit</c>'s <c>out</c>) to its own local-memory depot: the value is stored with <c>st.local</c>,
/// re-loaded with <c>ld.local</c> right before the inline instruction, and its results go the same way back. ptxas does
/// not promote these, so every tensor-core kernel had a 300–2100-byte stack frame and ~100 LDL/STL per four HMMA.
/// <para>
/// The rewrite is checked, not pattern-hopeful: a depot is promoted only when (1) it is declared
/// <c>.local .align A .b8 __local_depotN[S]</c> with S ∈ {2, 4, 8}; (2) its name appears in exactly one other
/// instruction, <c>mov.b64 %rdX, __local_depotN;</c>, and <c>%rdX</c> is defined nowhere else; (3) <c>%rdX</c> is used
/// only as the whole address <c>[%rdX]</c> of scalar <c>ld.local</c>/<c>st.local</c> instructions of exactly S bytes.
/// A depot that is read and written only that way is a variable nobody else can see, so a register
/// (<c>.reg .bS</c>, moved with <c>mov.bS</c>, which PTX allows between any registers of the same size) holds the
/// same value at every point of every path. Everything else is left as it was and reported in
/// <see cref="DepotPromotionReport.Kept"/>. The device loads, and the tests assemble, the PTX this returns.
/// </para>
/// </summary>
public static partial class LocalDepotPromotion
{
    /// <summary>Rewrites <paramref name="ptx"/>; returns the new text and what was promoted or kept.</summary>
    public static string Apply(string ptx, out DepotPromotionReport report)
    {
        ArgumentNullException.ThrowIfNull(ptx);
        var lines = ptx.Split('\n');
        var depots = new Dictionary<string, Depot>(StringComparer.Ordinal);
        var duplicates = new HashSet<string>(StringComparer.Ordinal);

        // Registers are per function: scope[i] numbers the function line i belongs to.
        var scope = new int[lines.Length];
        for (int i = 0, function = 0; i < lines.Length; i++)
        {
            if (FunctionPattern().IsMatch(lines[i])) function++;
            scope[i] = function;
        }

        // Pass 1: declarations, the address moves, and every other mention of a depot.
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (!line.Contains("__local_depot", StringComparison.Ordinal)) continue;
            var declaration = DeclarationPattern().Match(line);
            if (declaration.Success)
            {
                int size = int.Parse(declaration.Groups["size"].Value, CultureInfo.InvariantCulture);
                if (!depots.TryAdd(declaration.Groups["name"].Value, new Depot(i, size)))
                    duplicates.Add(declaration.Groups["name"].Value);
                continue;
            }
            var move = AddressMovePattern().Match(line);
            foreach (Match mention in NamePattern().Matches(line))
            {
                if (!depots.TryGetValue(mention.Value, out var depot)) continue;
                if (move.Success && move.Groups["name"].Value == mention.Value && depot.AddressRegister is null)
                {
                    depot.AddressRegister = move.Groups["reg"].Value;
                    depot.MoveLine = i;
                }
                else depot.Eligible = false;
            }
        }

        var byRegister = new Dictionary<(int, string), Depot>();
        foreach (var (name, depot) in depots)
        {
            if (depot.Size is not (2 or 4 or 8) || depot.AddressRegister is null || duplicates.Contains(name)
                || scope[depot.MoveLine!.Value] != scope[depot.DeclarationLine])
                depot.Eligible = false;
            else if (!byRegister.TryAdd((scope[depot.DeclarationLine], depot.AddressRegister), depot)) depot.Eligible = false;
        }

        // Pass 2: every use of an address register must be a whole-address scalar ld/st.local of the depot's width.
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (!line.Contains("%rd", StringComparison.Ordinal)) continue;
            foreach (Match token in RegisterPattern().Matches(line))
            {
                if (!byRegister.TryGetValue((scope[i], token.Value), out var depot) || i == depot.MoveLine) continue;
                var access = AccessPattern().Match(line);
                if (access.Success && access.Groups["addr"].Value == token.Value
                    && BitsOf(access.Groups["type"].Value) == depot.Size * 8
                    && RegisterPattern().Matches(line).Count(m => m.Value == token.Value) == 1)
                    depot.Accesses.Add(i);
                else depot.Eligible = false;
            }
        }

        // Pass 3: rewrite the eligible ones.
        var kept = new List<string>();
        int promoted = 0;
        var declarations = new Dictionary<int, StringBuilder>();
        foreach (var (name, depot) in depots)
        {
            if (!depot.Eligible)
            {
                kept.Add(name);
                continue;
            }
            string register = "%ldp" + name["__local_depot".Length..];
            string bits = (depot.Size * 8).ToString(CultureInfo.InvariantCulture);
            int owner = scope[depot.DeclarationLine];
            if (!declarations.TryGetValue(owner, out var declared)) declarations[owner] = declared = new StringBuilder();
            declared.Append("\t.reg .b").Append(bits).Append('\t').Append(register).Append(";\n");
            lines[depot.DeclarationLine] = null!;
            lines[depot.MoveLine!.Value] = null!;
            foreach (int i in depot.Accesses)
            {
                var access = AccessPattern().Match(lines[i]);
                string value = access.Groups["value"].Value;
                string indent = lines[i][..(lines[i].Length - lines[i].TrimStart().Length)];
                lines[i] = access.Groups["op"].Value == "st"
                    ? $"{indent}mov.b{bits}\t{register}, {AsBitsImmediate(value)};"
                    : $"{indent}mov.b{bits}\t{value}, {register};";
            }
            promoted++;
        }

        report = new DepotPromotionReport(promoted, kept.Count, kept);
        if (promoted == 0) return ptx;

        // Declare each function's registers where its first promoted depot was declared (ILGPU declares depots at the
        // top of the function body, which is also where PTX wants register declarations).
        var firstOfScope = depots.Values.Where(d => d.Eligible).GroupBy(d => scope[d.DeclarationLine])
            .ToDictionary(g => g.Min(d => d.DeclarationLine), g => g.Key);
        var output = new StringBuilder(ptx.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            if (firstOfScope.TryGetValue(i, out int function)) output.Append(declarations[function]);
            if (lines[i] is null) continue;
            output.Append(lines[i]);
            if (i < lines.Length - 1) output.Append('\n');
        }
        return output.ToString();
    }

    // A float immediate (0fXXXXXXXX / 0dXXXXXXXXXXXXXXXX) becomes the same bits as an integer immediate, which a
    // .bN move accepts; registers and integer immediates pass through.
    private static string AsBitsImmediate(string value) =>
        value.StartsWith("0f", StringComparison.OrdinalIgnoreCase) || value.StartsWith("0d", StringComparison.OrdinalIgnoreCase)
            ? "0x" + value[2..]
            : value;

    private static int BitsOf(string type) => int.Parse(type.AsSpan(1), CultureInfo.InvariantCulture);

    private sealed class Depot(int declarationLine, int size)
    {
        public int DeclarationLine { get; } = declarationLine;
        public int Size { get; } = size;
        public string? AddressRegister { get; set; }
        public int? MoveLine { get; set; }
        public bool Eligible { get; set; } = true;
        public List<int> Accesses { get; } = [];
    }

    [GeneratedRegex(@"^\s*\.local\s+\.align\s+\d+\s+\.b8\s+(?<name>__local_depot\d+)\[(?<size>\d+)\];\s*$")]
    private static partial Regex DeclarationPattern();

    [GeneratedRegex(@"^\s*mov\.(?:b|u|s)64\s+(?<reg>%rd\d+),\s*(?<name>__local_depot\d+);\s*$")]
    private static partial Regex AddressMovePattern();

    [GeneratedRegex(@"^\s*(?:\.visible\s+|\.weak\s+|\.extern\s+)?\.(?:entry|func)\b")]
    private static partial Regex FunctionPattern();

    [GeneratedRegex(@"__local_depot\d+")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"%rd\d+\b")]
    private static partial Regex RegisterPattern();

    // st.local.T [%rdX], value;   or   ld.local.T value, [%rdX];   (scalar, no offset, no vector, no volatile)
    [GeneratedRegex(@"^\s*(?:(?<op>st)\.local\.(?<type>[bfsu](?:16|32|64))\s+\[(?<addr>%rd\d+)\],\s*(?<value>%?[\w.]+);|(?<op>ld)\.local\.(?<type>[bfsu](?:16|32|64))\s+(?<value>%\w+),\s*\[(?<addr>%rd\d+)\];)\s*$")]
    private static partial Regex AccessPattern();
}
