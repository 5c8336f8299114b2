namespace Kernels.Cuda.Assembler;

/// <summary>
/// NVIDIA's offline tools (<c>ptxas</c>, <c>cuobjdump</c>) that turn the library's PTX into the SASS a GPU runs, without
/// a GPU. <c>scripts/fetch-cuda-tools.sh</c> puts them (CUDA 12.4, from Debian's non-free <c>nvidia-cuda-toolkit</c>)
/// into a cache folder; <see cref="Find"/> looks there, in <c>$KERNELS_CUDA_TOOLS</c>, and on the PATH.
/// </summary>
/// <param name="Folder">The folder holding both tools.</param>
public sealed record CudaTools(string Folder)
{
    /// <summary>Environment variable naming the tools' folder (or the cache folder whose <c>bin/</c> holds them).</summary>
    public const string EnvironmentVariable = "KERNELS_CUDA_TOOLS";

    /// <summary>The path of <c>ptxas</c>.</summary>
    public string Ptxas => Path.Combine(Folder, "ptxas");

    /// <summary>The path of <c>cuobjdump</c>.</summary>
    public string Cuobjdump => Path.Combine(Folder, "cuobjdump");

    /// <summary>The tools, or null when no folder holds both.</summary>
    public static CudaTools? Find()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } configured)
            candidates.AddRange([configured, Path.Combine(configured, "bin")]);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0) candidates.Add(Path.Combine(home, ".cache", "kernels-cuda-tools", "bin"));
        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        foreach (var folder in candidates)
            if (File.Exists(Path.Combine(folder, "ptxas")) && File.Exists(Path.Combine(folder, "cuobjdump")))
                return new CudaTools(folder);
        return null;
    }

    /// <summary>Why the tools are missing and how to get them (for test skips and errors).</summary>
    public static string MissingMessage =>
        "NVIDIA's ptxas/cuobjdump were not found: run scripts/fetch-cuda-tools.sh (or set " + EnvironmentVariable + ").";
}
