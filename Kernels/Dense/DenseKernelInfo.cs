using ILGPU.Runtime;
using Kernels.Cuda;
using Kernels.Engine;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Dense;

/// <summary>Compiled-kernel facts of the dense ops (registers, local bytes) for the tour's notes on a GPU.</summary>
internal static class DenseKernelInfo
{
    public static KernelResources? GemmResources(ComputeDevice device, Dense.GemmShape shape, bool bf16) => (shape, bf16) switch
    {
        (Dense.GemmShape.Skinny, false) => TileEngine.Resources<SkinnyTile, F16Mma, DenseWeightProducer, StoreEpilogue<DeviceHalf, F16>>(device),
        (Dense.GemmShape.Wide, false) => TileEngine.Resources<WideTile, F16Mma, DenseWeightProducer, StoreEpilogue<DeviceHalf, F16>>(device),
        (Dense.GemmShape.Large, false) => TileEngine.Resources<LargeTile, F16Mma, DenseWeightProducer, StoreEpilogue<DeviceHalf, F16>>(device),
        (Dense.GemmShape.Skinny, true) => TileEngine.Resources<SkinnyTile, BF16Mma, DenseWeightProducer, StoreEpilogue<BFloat16, BF16>>(device),
        (Dense.GemmShape.Wide, true) => TileEngine.Resources<WideTile, BF16Mma, DenseWeightProducer, StoreEpilogue<BFloat16, BF16>>(device),
        _ => TileEngine.Resources<LargeTile, BF16Mma, DenseWeightProducer, StoreEpilogue<BFloat16, BF16>>(device),
    };

    public static KernelResources? GemvResources(ComputeDevice device, bool bf16) =>
        KernelAttributes.Read((bf16 ? GemvKernel.Load<BFloat16, BF16, BF16Mma>(device) : (Delegate)GemvKernel.Load<DeviceHalf, F16, F16Mma>(device)).GetKernel());
}
