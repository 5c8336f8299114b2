using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ILGPU.Runtime.Cuda;
using Kernels.Cuda.Assembler;
using Kernels.Runtime;

namespace Kernels.Bench.Assembler;

/// <summary>
/// <c>Kernels.Bench kernels</c>: the static report. Every catalog kernel's PTX (exactly the text a CUDA device loads)
/// assembled by NVIDIA's ptxas for sm_80 and sm_90, with registers, stack, spills, shared memory, theoretical occupancy
/// on an H200, and the SASS of its main loop. The project's performance figure until a GPU run exists.
/// </summary>
public static class KernelsReport
{
    private const string Usage = "usage: Kernels.Bench kernels [--ops REGEX] [--arch sm_80,sm_90] [--json FILE] [--ptx DIR] [--raw] | kernels --device [--ops REGEX] [--json FILE]";

    /// <summary>Runs the report; returns 0 when no kernel breaks a rule, 1 when one does, 2 on bad arguments or missing tools.</summary>
    public static int Run(string[] args)
    {
        string? json = null, ptxFolder = null;
        Regex? filter = null;
        string[] architectures = ["sm_80", "sm_90"];
        bool raw = false, device = false;
        for (int i = 0; i < args.Length; i++)
        {
            string? Value() => i + 1 < args.Length ? args[++i] : null;
            switch (args[i])
            {
                case "--json": json = Value(); if (json is null) return Fail("--json needs a file"); break;
                case "--ptx": ptxFolder = Value(); if (ptxFolder is null) return Fail("--ptx needs a folder"); break;
                case "--raw": raw = true; break;
                case "--device": device = true; break;
                case "--arch":
                    var list = Value();
                    if (list is null) return Fail("--arch needs a list such as sm_80,sm_90");
                    architectures = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (architectures.Length == 0 || architectures.Any(a => !Regex.IsMatch(a, @"^sm_\d\d+a?$"))) return Fail($"--arch: '{list}' is not a list of sm_NN");
                    break;
                case "--ops":
                    var pattern = Value();
                    if (pattern is null) return Fail("--ops needs a regular expression");
                    try { filter = new Regex(pattern, RegexOptions.IgnoreCase); }
                    catch (ArgumentException e) { return Fail($"--ops: {e.Message}"); }
                    break;
                default: return Fail($"unknown option '{args[i]}'");
            }
        }
        if (json is not null && Path.GetDirectoryName(Path.GetFullPath(json)) is { } folder && !Directory.Exists(folder))
            return Fail($"--json: folder {folder} does not exist");
        if (device)
        {
            if (raw || ptxFolder is not null) return Fail("--device takes only --ops and --json");
            return DeviceKernels.Run(filter, json);
        }
        var tools = CudaTools.Find();
        if (tools is null) return Fail(CudaTools.MissingMessage);
        if (ptxFolder is not null) Directory.CreateDirectory(ptxFolder);

        var entries = KernelCatalog.All.Where(e => filter is null || filter.IsMatch(e.Family + " " + e.Name)).ToList();
        if (entries.Count == 0) return Fail("--ops matched no catalog kernel");
        Console.WriteLine($"{entries.Count} catalog kernels, {string.Join(" and ", architectures)}, {(raw ? "ILGPU's raw PTX (before promotion, never loaded)" : "the PTX devices load")}; ptxas {tools.Folder}");
        var clock = Stopwatch.StartNew();
        var rows = new ConcurrentBag<(int Index, KernelAnalysis Analysis)>();
        int done = 0;
        // Each worker has its own ILGPU backend per architecture (PtxCompiler); ptxas and cuobjdump run beside them.
        // Each architecture gets its own compile: that is the text a device of that architecture loads.
        Parallel.ForEach(entries.Select((e, i) => (e, i)), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount) },
            () => architectures.Select(a => new PtxCompiler(ToCuda(a))).ToArray(),
            (item, _, compilers) =>
            {
                var (entry, index) = item;
                for (int a = 0; a < architectures.Length; a++)
                {
                    int promoted = 0;
                    string ptx;
                    if (raw) ptx = compilers[a].RawText(entry);
                    else
                    {
                        ptx = compilers[a].Text(entry, out var report);
                        promoted = report.Promoted;
                    }
                    if (ptxFolder is not null) File.WriteAllText(Path.Combine(ptxFolder, FileName(index, entry, architectures[a])), ptx);
                    rows.Add((index * 16 + a, KernelAnalysis.Of(entry, tools, ptx, architectures[a], promoted)));
                }
                int n = Interlocked.Increment(ref done);
                Progress($"[{n}/{entries.Count}] {entry.Name}");
                return compilers;
            },
            compilers => { foreach (var c in compilers) c.Dispose(); });
        if (!Console.IsErrorRedirected) Console.Error.WriteLine();
        var ordered = rows.OrderBy(r => r.Index).Select(r => r.Analysis).ToList();
        Print(ordered);
        int broken = ordered.Count(a => a.Problems.Count > 0);
        Console.WriteLine($"{ordered.Count} kernel×architecture rows in {clock.Elapsed.TotalSeconds:F0} s; {broken} break a rule");
        if (json is not null) WriteJson(json, ordered);
        return broken == 0 ? 0 : 1;
    }

    private static void Print(IReadOnlyList<KernelAnalysis> rows)
    {
        Console.WriteLine($"{"kernel",-86} {"arch",-5} {"regs",4} {"stack",5} {"spill",5} {"smem",7} {"occ",9} {"SASS",5} {"LDL/STL",7} {"loop",5} {"/HMMA",6} {"/16B",6} {"stage",5}  problems");
        foreach (var a in rows)
        {
            var m = a.MainLoop;
            string smem = ((a.StaticSharedBytes + a.Entry.DynamicSharedBytes) / 1024.0).ToString("F1", CultureInfo.InvariantCulture) + "K";
            string occ = $"{a.Occupancy.GroupsPerSM}/{a.Entry.TargetGroupsPerSM} {a.Occupancy.Fraction * 100:F0}%";
            Console.WriteLine($"{Clip(a.Entry.Name, 86),-86} {a.Architecture,-5} {a.Registers,4} {a.StackBytes,5} {a.SpillStoreBytes + a.SpillLoadBytes,5} {smem,7} {occ,9} " +
                $"{a.SassInstructions,5} {a.LocalInstructions,7} {Show(m?.Instructions),5} {Show(m?.PerHmma),6} {Show(m?.Per16Bytes),6} {Show(m?.StageInstructions),5}  {string.Join("; ", a.Problems)}");
        }
    }

    private static void WriteJson(string path, IReadOnlyList<KernelAnalysis> rows)
    {
        var payload = rows.Select(a => new Dictionary<string, object?>
        {
            ["kernel"] = a.Entry.Name, ["family"] = a.Entry.Family, ["arch"] = a.Architecture,
            ["registers"] = a.Registers, ["stackBytes"] = a.StackBytes, ["spillStoreBytes"] = a.SpillStoreBytes,
            ["spillLoadBytes"] = a.SpillLoadBytes, ["staticSharedBytes"] = a.StaticSharedBytes,
            ["dynamicSharedBytes"] = a.Entry.DynamicSharedBytes, ["groupSize"] = a.Entry.GroupSize,
            ["groupsPerSM"] = a.Occupancy.GroupsPerSM, ["targetGroupsPerSM"] = a.Entry.TargetGroupsPerSM,
            ["occupancy"] = Math.Round(a.Occupancy.Fraction, 4), ["occupancyLimit"] = a.Occupancy.Limit.ToString(),
            ["sassInstructions"] = a.SassInstructions, ["ldlStl"] = a.LocalInstructions, ["hmma"] = a.Hmma, ["ldsm"] = a.Ldsm,
            ["ldgsts128"] = a.CpAsync16, ["ldg128"] = a.Load16, ["promotedDepots"] = a.PromotedDepots,
            ["mainLoopInstructions"] = a.MainLoop?.Instructions, ["mainLoopHmma"] = a.MainLoop?.Hmma,
            ["mainLoopPerHmma"] = a.MainLoop?.PerHmma, ["mainLoopPer16Bytes"] = a.MainLoop?.Per16Bytes,
            ["stageInstructions"] = a.MainLoop?.StageInstructions, ["claims"] = a.Entry.Claims.ToString(),
            ["problems"] = a.Problems,
        });
        File.WriteAllText(path, JsonSerializer.Serialize(payload, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {path}");
    }

    private static string FileName(int index, KernelEntry entry, string architecture) =>
        $"{index:D3}-{Regex.Replace(entry.Name, "[^A-Za-z0-9_.-]+", "_").Trim('_')}.{architecture}.ptx";

    // sm_90a reads PTX written for sm_90 (the "a" features are opt-in), so its text is the sm_90 compile.
    private static CudaArchitecture ToCuda(string architecture)
    {
        var digits = Regex.Match(architecture, @"^sm_(\d)(\d+)a?$");
        return new CudaArchitecture(int.Parse(digits.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(digits.Groups[2].Value, CultureInfo.InvariantCulture));
    }

    // A terminal gets one line that rewrites itself; a log (redirected stderr) gets one plain line per kernel.
    private static void Progress(string line)
    {
        if (Console.IsErrorRedirected) Console.Error.WriteLine(line);
        else Console.Error.Write("\r" + line.PadRight(120)[..120]);
    }

    private static string Show(double? value) => value is { } v ? v.ToString("F1", CultureInfo.InvariantCulture) : "-";

    private static string Show(int? value) => value is { } v ? v.ToString(CultureInfo.InvariantCulture) : "-";

    private static string Clip(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "…";

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"kernels: {message}");
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
