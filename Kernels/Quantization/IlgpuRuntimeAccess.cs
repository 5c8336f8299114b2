using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator builds its kernel launchers in a dynamic assembly named "ILGPURuntime"; the quantization
// kernels take internal structs (Vec16, the lane formats, launch parameters), so that assembly must see internals.
// InternalsVisibleTo allows duplicates, so another family declaring the same is harmless.
[assembly: InternalsVisibleTo("ILGPURuntime")]
