using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using ILGPU.Runtime.Cuda;
using Kernels.Cuda;
using Kernels.Runtime;

namespace Kernels.Bench.Assembler;

/// <summary>
/// <c>Kernels.Bench kernels --device</c>: every catalog kernel loaded on the CUDA device the way operations load it
/// (promoted PTX through the driver's JIT), with the registers and local bytes per thread the driver reports. The
/// first phase of <c>scripts/gpu-check.sh run</c>: it checks on the hardware what the static report claims.
/// </summary>
public static class DeviceKernels
{
    /// <summary>Returns 0 when every kernel loads with no local memory, 1 when one does not, 2 without a CUDA device.</summary>
    public static int Run(Regex? filter, string? json)
    {
        if (!ComputeDevice.CudaAvailable)
        {
            Console.Error.WriteLine("kernels --device: no CUDA device visible");
            return 2;
        }
        var device = ComputeDevice.Get(DeviceKind.Cuda);
        var accelerator = (CudaAccelerator)device.Accelerator;
        var entries = KernelCatalog.All.Where(e => filter is null || filter.IsMatch(e.Family + " " + e.Name)).ToList();
        Console.WriteLine($"{entries.Count} catalog kernels on {accelerator.Name} (sm_{accelerator.Architecture.Major}{accelerator.Architecture.Minor})");
        Console.WriteLine($"{"kernel",-86} {"regs",4} {"local",5} {"ms",6}  problem");
        var rows = new List<Dictionary<string, object?>>();
        int broken = 0;
        foreach (var entry in entries)
        {
            var clock = Stopwatch.StartNew();
            string? problem = null;
            KernelResources? resources = null;
            try
            {
                var (kernel, _) = KernelLoading.LoadEntry(accelerator, entry);
                using (kernel) resources = KernelAttributes.Read(kernel);
                if (resources is null) problem = "the driver reported no attributes";
                else if (resources.LocalBytes > 0) problem = $"{resources.LocalBytes} bytes of local memory per thread";
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                problem = "load failed: " + e.Message.Split('\n')[0];
            }
            if (problem is not null) broken++;
            double ms = clock.Elapsed.TotalMilliseconds;
            Console.WriteLine($"{(entry.Name.Length <= 86 ? entry.Name : entry.Name[..85] + "…"),-86} {resources?.Registers,4} {resources?.LocalBytes,5} {ms,6:F0}  {problem}");
            rows.Add(new()
            {
                ["kernel"] = entry.Name, ["family"] = entry.Family, ["registers"] = resources?.Registers,
                ["localBytes"] = resources?.LocalBytes, ["loadMilliseconds"] = Math.Round(ms, 1), ["problem"] = problem,
            });
        }
        Console.WriteLine($"{entries.Count} kernels loaded on the device; {broken} with a problem");
        if (json is not null)
        {
            File.WriteAllText(json, JsonSerializer.Serialize(new { device = accelerator.Name, kernels = rows }, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine($"wrote {json}");
        }
        return broken == 0 ? 0 : 1;
    }
}
