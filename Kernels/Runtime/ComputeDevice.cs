using System.Collections.Concurrent;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Kernels.Cuda;
using Kernels.Tensors;

namespace Kernels.Runtime;

/// <summary>
/// An accelerator with its stream and compiled-kernel cache. All devices share one ILGPU <see cref="ILGPU.Context"/>
/// per process, built at <see cref="OptimizationLevel.O2"/> (the level that emits <c>ld.global.v4</c>) with profiling
/// markers enabled for timing. Instances are process-wide singletons and thread-safe; they are never disposed by
/// callers (the process exit releases them).
/// </summary>
public sealed class ComputeDevice
{
    /// <summary>
    /// Environment variable that selects <see cref="Default"/>: <c>auto</c>, <c>cpu</c>, <c>cuda</c> (the first CUDA
    /// device) or <c>cuda:N</c> (the CUDA device with ordinal N, as <see cref="Cuda(int)"/>).
    /// </summary>
    public const string EnvironmentVariable = "KERNELS_DEVICE";

    /// <summary>The CPU device used by <see cref="DeviceKind.Cpu"/>: 32-lane warps, 4 warps a group, 1 multiprocessor.</summary>
    public static CPUDevice CpuWarp32Spec { get; } = new(32, 4, 1);

    /// <summary>A small-warp CPU device (4 lanes, 4 warps) for element-wise kernels in tests: far fewer OS threads.</summary>
    public static CPUDevice CpuSmallSpec { get; } = new(4, 4, 1);

    private static readonly Lazy<Context> SharedContext = new(CreateContext, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly ConcurrentDictionary<string, Lazy<ComputeDevice>> Devices = new();

    private readonly ConcurrentDictionary<object, Lazy<Delegate>> kernels = new();

    private readonly AsyncLocal<DeviceStream?> current = new();

    private ComputeDevice(Accelerator accelerator)
    {
        Accelerator = accelerator;
        Facts = DeviceFacts.Of(accelerator);
        DefaultStream = new DeviceStream(this, accelerator.DefaultStream, isDefault: true, owned: false);
    }

    /// <summary>The process-wide ILGPU context.</summary>
    public static Context Context => SharedContext.Value;

    /// <summary>The device chosen by <c>KERNELS_DEVICE</c> (default <c>auto</c>; see <see cref="EnvironmentVariable"/>).</summary>
    public static ComputeDevice Default
    {
        get
        {
            var (kind, ordinal) = Parse(Environment.GetEnvironmentVariable(EnvironmentVariable));
            return kind == DeviceKind.Cuda ? Cuda(ordinal) : Get(kind);
        }
    }

    /// <summary>The small-warp CPU device (see <see cref="CpuSmallSpec"/>).</summary>
    public static ComputeDevice CpuSmall => GetOrCreate("cpu-small", () =>
        Context.GetCPUDevice(FindCpu(CpuSmallSpec)).CreateAccelerator(Context));

    /// <summary>The 32-lane CPU device (see <see cref="CpuWarp32Spec"/>).</summary>
    public static ComputeDevice CpuWarp32 => GetOrCreate("cpu-warp32", () =>
        Context.GetCPUDevice(FindCpu(CpuWarp32Spec)).CreateAccelerator(Context));

    /// <summary>True when at least one CUDA device is visible.</summary>
    public static bool CudaAvailable => CudaDeviceCount > 0;

    /// <summary>The number of CUDA devices visible to the process (0 without a driver or GPU).</summary>
    public static int CudaDeviceCount => Context.GetCudaDevices().Count;

    /// <summary>
    /// The CUDA device with the given ordinal (ILGPU's order of <c>cuDeviceGet</c>, which <c>CUDA_VISIBLE_DEVICES</c>
    /// filters), created on first use with its own stream and kernel cache. Each device is a process-wide singleton;
    /// tensors remember theirs, and an operation given tensors of two devices refuses them.
    /// </summary>
    /// <param name="ordinal">0 ≤ ordinal &lt; <see cref="CudaDeviceCount"/>.</param>
    /// <exception cref="InvalidOperationException">No CUDA device is visible.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="ordinal"/> names no visible device.</exception>
    public static ComputeDevice Cuda(int ordinal = 0)
    {
        int count = CudaDeviceCount;
        if (count == 0) throw new InvalidOperationException("No CUDA device is visible (no NVIDIA driver or GPU).");
        if ((uint)ordinal >= (uint)count)
            throw new ArgumentOutOfRangeException(nameof(ordinal), ordinal,
                $"ordinal must name a visible CUDA device: 0 ≤ ordinal < {count}.");
        return GetOrCreate($"cuda{ordinal}", () => Context.CreateCudaAccelerator(ordinal));
    }

    /// <summary>
    /// Returns the device of the given kind; <see cref="DeviceKind.Cuda"/> is the first CUDA device (see
    /// <see cref="Cuda(int)"/> for the others) and throws when no CUDA device exists.
    /// </summary>
    public static ComputeDevice Get(DeviceKind kind) => kind switch
    {
        DeviceKind.Cuda => CudaAvailable
            ? Cuda(0)
            : throw new InvalidOperationException($"{EnvironmentVariable}=cuda but no CUDA device is visible."),
        DeviceKind.Cpu => CpuWarp32,
        DeviceKind.Auto => CudaAvailable ? Get(DeviceKind.Cuda) : CpuWarp32,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "kind must be DeviceKind.Auto, Cuda or Cpu."),
    };

    /// <summary>Parses a <c>KERNELS_DEVICE</c> value (null or empty means auto) into its kind, ignoring an ordinal.</summary>
    public static DeviceKind ParseKind(string? value) => Parse(value).Kind;

    /// <summary>
    /// Parses a <c>KERNELS_DEVICE</c> value: <c>auto</c> (or null/empty), <c>cpu</c>, <c>cuda</c>/<c>gpu</c>
    /// (ordinal 0) or <c>cuda:N</c>/<c>gpu:N</c>. Whether device N exists is checked when it is created.
    /// </summary>
    public static (DeviceKind Kind, int Ordinal) Parse(string? value)
    {
        string v = (value ?? "").Trim().ToLowerInvariant();
        int colon = v.IndexOf(':');
        string head = colon < 0 ? v : v[..colon];
        if (colon >= 0 && head is "cuda" or "gpu")
        {
            if (int.TryParse(v.AsSpan(colon + 1), System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out int ordinal))
                return (DeviceKind.Cuda, ordinal);
        }
        else if (colon < 0)
        {
            switch (head)
            {
                case "" or "auto": return (DeviceKind.Auto, 0);
                case "cuda" or "gpu": return (DeviceKind.Cuda, 0);
                case "cpu": return (DeviceKind.Cpu, 0);
            }
        }
        throw new ArgumentException($"{EnvironmentVariable} must be auto, cpu, cuda or cuda:N (N a device ordinal), not '{value}'.",
            nameof(value));
    }

    /// <summary>The ILGPU accelerator.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The ILGPU stream operations enqueue on now: <see cref="CurrentStream"/>'s.</summary>
    public AcceleratorStream Stream => CurrentStream.Native;

    /// <summary>The device's default stream (on CUDA the legacy default stream), current unless a scope says otherwise.</summary>
    public DeviceStream DefaultStream { get; }

    /// <summary>
    /// The stream every operation on this device enqueues on from the calling thread (and the asynchronous flow it
    /// started): the innermost <see cref="DeviceStream.Use"/> scope's stream, else <see cref="DefaultStream"/>.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The current scope's stream was disposed inside the scope.</exception>
    public DeviceStream CurrentStream
    {
        get
        {
            var stream = current.Value;
            if (stream is null) return DefaultStream;
            ObjectDisposedException.ThrowIf(stream.IsDisposed, stream);
            return stream;
        }
    }

    /// <summary>
    /// Creates a stream of its own (on CUDA a non-blocking stream: it does not wait for the default stream; order the
    /// two with events). Dispose it when done.
    /// </summary>
    public DeviceStream CreateStream() => new(this, Accelerator.CreateStream(), isDefault: false, owned: true);

    /// <summary>
    /// Wraps a CUDA stream another framework created (a <c>CUstream</c>/<c>cudaStream_t</c> of this device's context),
    /// so the library's operations enqueue on it. The library never destroys it; the owner must keep it alive until
    /// the wrapper is disposed.
    /// </summary>
    /// <exception cref="InvalidOperationException">The device is not a CUDA device.</exception>
    public DeviceStream WrapStream(IntPtr cudaStream)
    {
        if (Accelerator is not CudaAccelerator cuda)
            throw new InvalidOperationException($"Only a CUDA device can wrap a CUDA stream; {Name} is not one.");
        return new DeviceStream(this, cuda.CreateStream(cudaStream, responsible: false), isDefault: false, owned: true);
    }

    /// <summary>Makes <paramref name="stream"/> current (see <see cref="DeviceStream.Use"/>).</summary>
    /// <exception cref="ArgumentException">The stream belongs to another device.</exception>
    public StreamScope Use(DeviceStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream.Device != this)
            throw new ArgumentException($"stream belongs to {stream.Device}, not to {this}.", nameof(stream));
        ObjectDisposedException.ThrowIf(stream.IsDisposed, stream);
        var previous = current.Value;
        current.Value = stream;
        return new StreamScope(this, previous, stream);
    }

    internal void EndUse(DeviceStream? previous, DeviceStream ending)
    {
        if (current.Value != ending)
            throw new InvalidOperationException("Stream scopes must be disposed in the reverse order of Use.");
        current.Value = previous;
    }

    /// <summary>Blocks the host until the work of every stream of this device has finished.</summary>
    internal void SynchronizeAllStreams() => Accelerator.Synchronize();

    /// <summary>Device facts (name, SM count, L2, shared-memory limits).</summary>
    public DeviceFacts Facts { get; }

    /// <summary>True for a CUDA GPU.</summary>
    public bool IsCuda => Accelerator.AcceleratorType == AcceleratorType.Cuda;

    /// <summary>A short human-readable name, e.g. "NVIDIA H200" or "CPU accelerator (warp 32)".</summary>
    public string Name => IsCuda ? Facts.Name : $"CPU accelerator (warp {Accelerator.WarpSize})";

    /// <summary>Waits until all work enqueued on <see cref="CurrentStream"/> has finished.</summary>
    public void Synchronize() => Stream.Synchronize();

    /// <summary>Allocates an uninitialized tensor with the given lengths (row-major).</summary>
    public DeviceTensor<T> Allocate<T>(params ReadOnlySpan<nint> lengths) where T : unmanaged => new(this, lengths);

    /// <summary>Allocates a tensor with the given lengths and copies <paramref name="data"/> into it.</summary>
    public DeviceTensor<T> Upload<T>(ReadOnlySpan<T> data, params ReadOnlySpan<nint> lengths) where T : unmanaged
    {
        if (!lengths.IsEmpty && TensorShape.Product(lengths) != data.Length)
            throw new ArgumentException(
                $"data has {data.Length} elements but the lengths {TensorShape.Format(lengths)} need {TensorShape.Product(lengths)}.", nameof(data));
        var t = lengths.IsEmpty ? new DeviceTensor<T>(this, [data.Length]) : new DeviceTensor<T>(this, lengths);
        try { t.CopyFrom(data); }
        catch { t.Dispose(); throw; }
        return t;
    }

    /// <summary>
    /// Returns the kernel delegate cached under <paramref name="key"/>, compiling it with <paramref name="load"/> on
    /// first use. Thread-safe; each kernel compiles once per device. Keys are usually the kernel method's
    /// <c>MethodInfo</c> or a tuple naming its specialization.
    /// </summary>
    public TDelegate GetKernel<TDelegate>(object key, Func<Accelerator, TDelegate> load) where TDelegate : Delegate
    {
        var lazy = kernels.GetOrAdd(key, _ => new Lazy<Delegate>(() => load(Accelerator), LazyThreadSafetyMode.ExecutionAndPublication));
        return (TDelegate)lazy.Value;
    }

    /// <summary>
    /// Number of groups for a grid-stride kernel over <paramref name="items"/> work items with
    /// <paramref name="groupSize"/> threads a group: enough to fill every multiprocessor on a GPU, few on the CPU
    /// (its groups run one after another).
    /// </summary>
    public int GroupsFor(long items, int groupSize)
    {
        long needed = Math.Max(1, (items + groupSize - 1) / groupSize);
        long cap = IsCuda
            ? (long)Accelerator.NumMultiprocessors * Math.Max(1, Accelerator.MaxNumThreadsPerMultiprocessor / groupSize)
            : 4;
        return (int)Math.Min(needed, Math.Min(cap, int.MaxValue));
    }

    /// <summary>Threads per group for simple element-wise kernels: 256 on a GPU, one warp on the CPU accelerator.</summary>
    public int ElementwiseGroupSize => IsCuda ? 256 : Accelerator.WarpSize;

    /// <inheritdoc />
    public override string ToString() => Name;

    private static ComputeDevice GetOrCreate(string key, Func<Accelerator> create) =>
        Devices.GetOrAdd(key, _ => new Lazy<ComputeDevice>(() => new ComputeDevice(create()),
            LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    private static int FindCpu(CPUDevice spec)
    {
        var cpus = Context.GetCPUDevices();
        for (int i = 0; i < cpus.Count; i++)
            if (cpus[i].WarpSize == spec.WarpSize && cpus[i].MaxNumThreadsPerGroup == spec.MaxNumThreadsPerGroup) return i;
        throw new InvalidOperationException("The configured CPU device is missing from the context.");
    }

    private static Context CreateContext()
    {
        CudaLibraryResolver.Install();
        return Context.Create(b => b
            .Optimize(OptimizationLevel.O2)
            .Profiling()
            .EnableAlgorithms()
            .Cuda()
            .CPU(CpuWarp32Spec)
            .CPU(CpuSmallSpec));
    }
}
