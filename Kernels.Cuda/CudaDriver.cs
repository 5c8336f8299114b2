using System.Runtime.InteropServices;
using System.Text;

namespace Kernels.Cuda;

/// <summary>
/// The CUDA driver entry points ILGPU 1.5.3 does not expose, bound at run time from <c>libcuda.so.1</c>
/// (fallback <c>libcuda.so</c>). Every member throws <see cref="InvalidOperationException"/> when no driver is present;
/// check <see cref="IsAvailable"/> first.
/// </summary>
public static unsafe class CudaDriver
{
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN</c>.</summary>
    public const int AttributeMaxSharedMemoryPerBlockOptin = 97;
    /// <summary><c>CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT</c>.</summary>
    public const int AttributeMultiprocessorCount = 16;
    /// <summary><c>CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE</c>.</summary>
    public const int AttributeL2CacheSize = 38;
    /// <summary><c>CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES</c>.</summary>
    public const int FuncAttributeLocalSizeBytes = 3;
    /// <summary><c>CU_FUNC_ATTRIBUTE_NUM_REGS</c>.</summary>
    public const int FuncAttributeNumRegs = 4;
    /// <summary><c>CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES</c>.</summary>
    public const int FuncAttributeMaxDynamicSharedSizeBytes = 8;

    private sealed class Table
    {
        public delegate* unmanaged<int*, int, int, int> DeviceGetAttribute;
        public delegate* unmanaged<IntPtr, int, int, int> FuncSetAttribute;
        public delegate* unmanaged<int*, int, IntPtr, int> FuncGetAttribute;
        public delegate* unmanaged<IntPtr*, byte*, uint, int*, void**, int> ModuleLoadDataEx;
        public delegate* unmanaged<IntPtr*, IntPtr, byte*, int> ModuleGetFunction;
        public delegate* unmanaged<IntPtr, int> ModuleUnload;
        public delegate* unmanaged<IntPtr*, uint, int> EventCreate;
        public delegate* unmanaged<IntPtr, IntPtr, int> EventRecord;
        public delegate* unmanaged<IntPtr, int> EventQuery;
        public delegate* unmanaged<IntPtr, int> EventSynchronize;
        public delegate* unmanaged<IntPtr, int> EventDestroy;
        public delegate* unmanaged<IntPtr, IntPtr, uint, int> StreamWaitEvent;
    }

    private static readonly Lazy<Table?> Bound = new(Bind);

    private static Table? Bind()
    {
        if (!CudaLibraryResolver.TryLoadDriver(out var lib)) return null;
        try
        {
            return new Table
            {
                DeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)NativeLibrary.GetExport(lib, "cuDeviceGetAttribute"),
                FuncSetAttribute = (delegate* unmanaged<IntPtr, int, int, int>)NativeLibrary.GetExport(lib, "cuFuncSetAttribute"),
                FuncGetAttribute = (delegate* unmanaged<int*, int, IntPtr, int>)NativeLibrary.GetExport(lib, "cuFuncGetAttribute"),
                ModuleLoadDataEx = (delegate* unmanaged<IntPtr*, byte*, uint, int*, void**, int>)NativeLibrary.GetExport(lib, "cuModuleLoadDataEx"),
                ModuleGetFunction = (delegate* unmanaged<IntPtr*, IntPtr, byte*, int>)NativeLibrary.GetExport(lib, "cuModuleGetFunction"),
                ModuleUnload = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(lib, "cuModuleUnload"),
                EventCreate = (delegate* unmanaged<IntPtr*, uint, int>)NativeLibrary.GetExport(lib, "cuEventCreate"),
                EventRecord = (delegate* unmanaged<IntPtr, IntPtr, int>)NativeLibrary.GetExport(lib, "cuEventRecord"),
                EventQuery = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(lib, "cuEventQuery"),
                EventSynchronize = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(lib, "cuEventSynchronize"),
                EventDestroy = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(lib, "cuEventDestroy_v2"),
                StreamWaitEvent = (delegate* unmanaged<IntPtr, IntPtr, uint, int>)NativeLibrary.GetExport(lib, "cuStreamWaitEvent"),
            };
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }

    /// <summary>True when the driver library loaded and every entry point was found.</summary>
    public static bool IsAvailable => Bound.Value is not null;

    private static Table Api => Bound.Value ?? throw new InvalidOperationException(
        "The CUDA driver (libcuda.so.1 or libcuda.so) is not available on this machine.");

    private static void Check(int result, string call)
    {
        if (result != 0) throw new InvalidOperationException($"{call} failed with CUresult {result}.");
    }

    /// <summary><c>cuDeviceGetAttribute</c> for a device ordinal.</summary>
    public static int GetDeviceAttribute(int attribute, int device)
    {
        int value;
        Check(Api.DeviceGetAttribute(&value, attribute, device), "cuDeviceGetAttribute");
        return value;
    }

    /// <summary><c>cuFuncSetAttribute</c>, e.g. to let a kernel use dynamic shared memory above 48 KB.</summary>
    public static void SetFunctionAttribute(IntPtr function, int attribute, int value) =>
        Check(Api.FuncSetAttribute(function, attribute, value), "cuFuncSetAttribute");

    /// <summary><c>cuFuncGetAttribute</c>, e.g. registers per thread or local (spill) bytes.</summary>
    public static int GetFunctionAttribute(IntPtr function, int attribute)
    {
        int value;
        Check(Api.FuncGetAttribute(&value, attribute, function), "cuFuncGetAttribute");
        return value;
    }

    /// <summary>
    /// Loads a PTX (or cubin) image with <c>cuModuleLoadDataEx</c> in the current CUDA context, capturing the JIT's
    /// info and error logs. Throws with the error log when the JIT rejects the image.
    /// </summary>
    public static IntPtr LoadModule(ReadOnlySpan<byte> image, out string infoLog)
    {
        const int logSize = 16 * 1024;
        // CU_JIT_INFO_LOG_BUFFER=3, _SIZE_BYTES=4, CU_JIT_ERROR_LOG_BUFFER=5, _SIZE_BYTES=6, CU_JIT_LOG_VERBOSE=12
        var info = new byte[logSize];
        var error = new byte[logSize];
        var nulTerminated = new byte[image.Length + 1];
        image.CopyTo(nulTerminated);
        IntPtr module;
        int result;
        fixed (byte* pInfo = info, pError = error, pImage = nulTerminated)
        {
            int* options = stackalloc int[] { 3, 4, 5, 6, 12 };
            void** values = stackalloc void*[5];
            values[0] = pInfo; values[1] = (void*)(nint)logSize;
            values[2] = pError; values[3] = (void*)(nint)logSize;
            values[4] = (void*)(nint)1;
            result = Api.ModuleLoadDataEx(&module, pImage, 5, options, values);
        }
        infoLog = CString(info);
        if (result != 0)
            throw new InvalidOperationException($"cuModuleLoadDataEx failed with CUresult {result}: {CString(error)}");
        return module;
    }

    /// <summary><c>cuModuleGetFunction</c>.</summary>
    public static IntPtr GetFunction(IntPtr module, string name)
    {
        var bytes = Encoding.ASCII.GetBytes(name + "\0");
        IntPtr function;
        fixed (byte* p = bytes) Check(Api.ModuleGetFunction(&function, module, p), "cuModuleGetFunction");
        return function;
    }

    /// <summary><c>cuModuleUnload</c>.</summary>
    public static void UnloadModule(IntPtr module) => Check(Api.ModuleUnload(module), "cuModuleUnload");

    /// <summary><c>CUresult CUDA_ERROR_NOT_READY</c>: <c>cuEventQuery</c> on an event whose work is still pending.</summary>
    public const int ErrorNotReady = 600;

    /// <summary>
    /// <c>cuEventCreate</c> with <c>CU_EVENT_DISABLE_TIMING</c> (an ordering event: the cheapest kind) in the current
    /// context (bind the accelerator first).
    /// </summary>
    public static IntPtr CreateEvent()
    {
        IntPtr e;
        Check(Api.EventCreate(&e, 2), "cuEventCreate");
        return e;
    }

    /// <summary><c>cuEventRecord</c>: the event completes when the stream's work enqueued so far has finished.</summary>
    public static void RecordEvent(IntPtr @event, IntPtr stream) => Check(Api.EventRecord(@event, stream), "cuEventRecord");

    /// <summary><c>cuEventQuery</c>: true when the event's work has finished (or it was never recorded).</summary>
    public static bool QueryEvent(IntPtr @event)
    {
        int result = Api.EventQuery(@event);
        if (result == ErrorNotReady) return false;
        Check(result, "cuEventQuery");
        return true;
    }

    /// <summary><c>cuEventSynchronize</c>: the host waits for the event.</summary>
    public static void SynchronizeEvent(IntPtr @event) => Check(Api.EventSynchronize(@event), "cuEventSynchronize");

    /// <summary><c>cuEventDestroy_v2</c>.</summary>
    public static void DestroyEvent(IntPtr @event) => Check(Api.EventDestroy(@event), "cuEventDestroy");

    /// <summary><c>cuStreamWaitEvent</c>: work enqueued on <paramref name="stream"/> after this call waits, on the
    /// device, for <paramref name="event"/>; the host does not wait.</summary>
    public static void StreamWaitEvent(IntPtr stream, IntPtr @event) =>
        Check(Api.StreamWaitEvent(stream, @event, 0), "cuStreamWaitEvent");

    private static string CString(byte[] buffer)
    {
        int n = Array.IndexOf(buffer, (byte)0);
        return Encoding.ASCII.GetString(buffer, 0, n < 0 ? buffer.Length : n).Trim();
    }
}
