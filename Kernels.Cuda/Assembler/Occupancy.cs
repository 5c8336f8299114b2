namespace Kernels.Cuda.Assembler;

/// <summary>What limits how many groups of a kernel reside on one SM at once.</summary>
public enum OccupancyLimit
{
    /// <summary>Threads per SM (or the groups-per-SM cap).</summary>
    Threads,
    /// <summary>The register file.</summary>
    Registers,
    /// <summary>Shared memory.</summary>
    SharedMemory,
}

/// <summary>Theoretical occupancy of a kernel on one SM of a given chip (the CUDA occupancy calculator's rules).</summary>
/// <param name="GroupsPerSM">Groups resident at once.</param>
/// <param name="ThreadsPerSM">Threads resident at once.</param>
/// <param name="Fraction">Resident warps over the SM's maximum.</param>
/// <param name="Limit">What bounds <paramref name="GroupsPerSM"/>.</param>
public sealed record Occupancy(int GroupsPerSM, int ThreadsPerSM, double Fraction, OccupancyLimit Limit)
{
    /// <summary>H200 (Hopper, sm_90) per-SM limits: 64 K registers, 228 KB shared memory, 2048 threads, 32 groups.</summary>
    public static readonly SmLimits H200 = new(65536, 228 * 1024, 227 * 1024, 1024, 2048, 32, 255);

    /// <summary>Occupancy of a kernel with <paramref name="registers"/> per thread, <paramref name="groupSize"/>
    /// threads a group and <paramref name="sharedBytes"/> of shared memory (static + dynamic) a group.</summary>
    public static Occupancy Of(SmLimits sm, int registers, int groupSize, int sharedBytes)
    {
        ArgumentNullException.ThrowIfNull(sm);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(groupSize);
        int warpsPerGroup = (groupSize + 31) / 32;
        int maxWarps = sm.ThreadsPerSM / 32;
        int byThreads = Math.Min(sm.GroupsPerSM, maxWarps / warpsPerGroup);
        // Registers are allocated per warp in units of 256.
        int registersPerWarp = (Math.Max(1, registers) * 32 + 255) / 256 * 256;
        int byRegisters = registers > sm.MaxRegistersPerThread ? 0 : sm.RegistersPerSM / registersPerWarp / warpsPerGroup;
        // Shared memory per group, in 128-byte units, plus the 1 KB the runtime reserves per group.
        int sharedPerGroup = (sharedBytes + sm.ReservedSharedPerGroup + 127) / 128 * 128;
        int bySharedMemory = sharedBytes > sm.MaxSharedPerGroup ? 0 : sm.SharedPerSM / sharedPerGroup;
        int groups = Math.Min(byThreads, Math.Min(byRegisters, bySharedMemory));
        var limit = groups == byThreads ? OccupancyLimit.Threads : groups == byRegisters ? OccupancyLimit.Registers : OccupancyLimit.SharedMemory;
        return new Occupancy(groups, groups * groupSize, (double)(groups * warpsPerGroup) / maxWarps, limit);
    }
}

/// <summary>Per-SM resources of a chip, for <see cref="Occupancy.Of"/>.</summary>
/// <param name="RegistersPerSM">32-bit registers per SM.</param>
/// <param name="SharedPerSM">Shared memory per SM usable by groups, in bytes.</param>
/// <param name="MaxSharedPerGroup">Most shared memory one group may use (opt-in), in bytes.</param>
/// <param name="ReservedSharedPerGroup">Shared memory the runtime reserves per resident group, in bytes.</param>
/// <param name="ThreadsPerSM">Resident threads per SM.</param>
/// <param name="GroupsPerSM">Resident groups per SM.</param>
/// <param name="MaxRegistersPerThread">Registers one thread may use.</param>
public sealed record SmLimits(int RegistersPerSM, int SharedPerSM, int MaxSharedPerGroup, int ReservedSharedPerGroup,
    int ThreadsPerSM, int GroupsPerSM, int MaxRegistersPerThread);
