using Kernels.Optimizers;
using Kernels.Runtime;
using Kernels.Tensors;
using Kernels.Tests.Harness;

namespace Kernels.Tests.Optimizers;

/// <summary>A random optimization problem: bitsandbytes' test distribution (p ~ 0.1·N(0,1), g ~ 0.01·N(0,1)).</summary>
internal static class OptimizerProblem
{
    public static readonly OptimizerKind[] Kinds = Enum.GetValues<OptimizerKind>();

    /// <summary>bitsandbytes' test learning rates (Adam 1e-3, Lion 1e-4, SGD/RMSprop 1e-2), and Adagrad 1e-2.</summary>
    public static OptimizerSettings Settings(OptimizerKind kind, float weightDecay = 0f)
    {
        var s = kind switch
        {
            OptimizerKind.Lion => OptimizerSettings.Defaults(kind, 1e-4f),
            OptimizerKind.Adam or OptimizerKind.AdamW => OptimizerSettings.Defaults(kind, 1e-3f),
            OptimizerKind.RMSprop => OptimizerSettings.Defaults(kind, 1e-2f) with { Beta2 = 0.9f },
            _ => OptimizerSettings.Defaults(kind, 1e-2f),
        };
        return s with { WeightDecay = weightDecay };
    }

    public static T[] Convert<T>(float[] x) where T : unmanaged => ElementTypes.FromFloat<T>(x);

    public static float[] Widen<T>(T[] x) where T : unmanaged => Compare.ToFloat<T>(x);

    /// <summary>Uploads an array (fp16 through ILGPU.Half, which is the device type).</summary>
    public static DeviceTensor<T> Upload<T>(ComputeDevice device, T[] data) where T : unmanaged => device.Upload<T>(data, data.Length);
}
