using Kernels.Cuda.Assembler;

namespace Kernels.Runtime;

/// <summary>The loop that carries a kernel's work, measured in SASS.</summary>
/// <param name="Instructions">SASS instructions in one iteration.</param>
/// <param name="Hmma">HMMA instructions in one iteration.</param>
/// <param name="GlobalBytes">Bytes one iteration loads from global memory (per thread, by instruction widths).</param>
/// <param name="StageInstructions">For tensor-core kernels, instructions of the loop enclosing the innermost HMMA
/// loop (the engine's whole K stage: producer, activations copy, barriers and the mma loop); null when none.</param>
public sealed record MainLoopFigures(int Instructions, int Hmma, int GlobalBytes, int? StageInstructions)
{
    /// <summary>Instructions per HMMA (tensor-core kernels), else null.</summary>
    public double? PerHmma => Hmma > 0 ? (double)Instructions / Hmma : null;

    /// <summary>Instructions per 16 loaded bytes (memory-bound kernels), else null.</summary>
    public double? Per16Bytes => Hmma == 0 && GlobalBytes > 0 ? Instructions / (GlobalBytes / 16.0) : null;
}

/// <summary>
/// The static performance figure of one catalog kernel on one architecture, from NVIDIA's assembler: resources,
/// occupancy on an H200, instruction mix, the main loop, and every rule it breaks (<see cref="Problems"/>). This is the
/// project's evidence about a kernel's code until a GPU has run it.
/// </summary>
public sealed record KernelAnalysis(KernelEntry Entry, string Architecture, int Registers, int StackBytes, int SpillStoreBytes,
    int SpillLoadBytes, int StaticSharedBytes, Occupancy Occupancy, int SassInstructions, int LocalInstructions, int Hmma,
    int Ldsm, int CpAsync16, int Load16, MainLoopFigures? MainLoop, int PromotedDepots, IReadOnlyList<string> Problems)
{
    /// <summary>Analyzes <paramref name="entry"/>'s PTX (<see cref="PtxCompilation"/>) assembled for <paramref name="architecture"/>.</summary>
    public static KernelAnalysis Of(KernelEntry entry, CudaTools tools, string ptx, string architecture, int promotedDepots)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var k = Ptxas.Assemble(tools, ptx, architecture);
        var sass = k.Sass;
        var occupancy = Occupancy.Of(Occupancy.H200, k.Registers, entry.GroupSize, k.StaticSharedBytes + entry.DynamicSharedBytes);
        int local = sass.Count(i => i.IsLocal), hmma = sass.Count(i => i.IsHmma), ldsm = sass.Count(i => i.IsLdsm);
        int cpAsync = sass.Count(i => i.IsCpAsync16), load16 = sass.Count(i => i.IsLoad16);
        var main = MainLoopOf(sass);

        var problems = new List<string>();
        if (k.StackBytes > 0) problems.Add($"{k.StackBytes} bytes stack frame");
        if (k.SpillStoreBytes + k.SpillLoadBytes > 0) problems.Add($"spills ({k.SpillStoreBytes} B stored, {k.SpillLoadBytes} B loaded)");
        if (local > 0) problems.Add($"{local} LDL/STL instructions");
        if (occupancy.GroupsPerSM < entry.TargetGroupsPerSM)
            problems.Add($"{occupancy.GroupsPerSM} groups/SM on an H200 (limited by {occupancy.Limit}), target {entry.TargetGroupsPerSM}");
        if (entry.Claims.HasFlag(SassClaims.Hmma))
        {
            var inner = sass.InnermostLoopWith(i => i.IsHmma);
            if (inner is null) problems.Add("claims HMMA in its mainloop but no loop holds one");
            else if (entry.Claims.HasFlag(SassClaims.Ldsm) && !inner.Body.Any(i => i.IsLdsm))
                problems.Add("claims LDSM per mainloop iteration but the HMMA loop has none");
        }
        if (entry.Claims.HasFlag(SassClaims.Ldsm) && ldsm == 0) problems.Add("claims LDSM, none in SASS");
        if (entry.Claims.HasFlag(SassClaims.CpAsync16) && cpAsync == 0) problems.Add("claims LDGSTS.E.BYPASS.128, none in SASS");
        if (entry.Claims.HasFlag(SassClaims.Load16) && load16 == 0) problems.Add("claims LDG.E.128, none in SASS");

        return new KernelAnalysis(entry, architecture, k.Registers, k.StackBytes, k.SpillStoreBytes, k.SpillLoadBytes,
            k.StaticSharedBytes, occupancy, sass.Instructions.Count, local, hmma, ldsm, cpAsync, load16, main, promotedDepots, problems);
    }

    // Tensor-core kernels: the innermost loop holding an HMMA (and the loop around it). Others: the innermost loop that
    // loads from global memory.
    private static MainLoopFigures? MainLoopOf(SassListing sass)
    {
        var inner = sass.InnermostLoopWith(i => i.IsHmma);
        if (inner is not null)
            return new MainLoopFigures(inner.Instructions, inner.Hmma, inner.GlobalBytes, sass.Enclosing(inner)?.Instructions);
        var loads = sass.InnermostLoopWith(i => i.GlobalBytes > 0);
        return loads is null ? null : new MainLoopFigures(loads.Instructions, 0, loads.GlobalBytes, null);
    }
}
