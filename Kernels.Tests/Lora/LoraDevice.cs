using Kernels.Runtime;
using Kernels.Tests.Harness;

namespace Kernels.Tests.Lora;

/// <summary>The device LoRA tests run on: the 32-lane CPU accelerator (the tile engine needs whole warps).</summary>
internal sealed class ComputeDeviceRef
{
    public ComputeDevice Value => Devices.CpuWarp32;
}
