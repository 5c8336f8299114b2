using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator builds each kernel's launcher in a dynamic assembly named "ILGPURuntime"; the LoRA kernels'
// argument structs are internal plumbing, so that assembly must be allowed to see them.
[assembly: InternalsVisibleTo("ILGPURuntime")]
