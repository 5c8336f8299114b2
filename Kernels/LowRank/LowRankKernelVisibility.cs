using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator builds kernel launchers in a dynamic assembly named "ILGPURuntime"; the family's internal
// kernel argument structs (GemmParams...) must be visible to it. Repeating the attribute in another file is harmless.
[assembly: InternalsVisibleTo("ILGPURuntime")]
