using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Optimizers;

/// <summary>Optional per-call behaviour of <see cref="Optimizer8Bit.Step{TParam, TGrad}"/>.</summary>
public readonly struct OptimizerStepOptions
{
    /// <summary>
    /// When set, f16/bf16 parameter writes round stochastically (unbiased) with random bits from the project's
    /// counter-based Philox4x32-10 (<see cref="Philox"/>) keyed on (seed, step, element index): reproducible,
    /// independent of the launch geometry. Ignored for
    /// f32 parameters. Default: round to nearest even.
    /// </summary>
    public ulong? StochasticRoundingSeed { get; init; }

    /// <summary>
    /// Optional one-element int tensor on the step's device: the number of elements whose update was skipped by the
    /// non-finite policy is ADDED to it (atomically, on the device; clear it yourself). Default: not counted.
    /// </summary>
    public DeviceTensorSpan<int> SkippedCount { get; init; }

    /// <summary>
    /// bitsandbytes' <c>gnorm_scale</c>: every gradient is multiplied by it (in f32, before weight decay). Default 1.
    /// Finite and ≥ 0.
    /// </summary>
    public float? GradientScale { get; init; }

    /// <summary>
    /// bitsandbytes' <c>percentile_clipping</c>: when set, the gradients are also multiplied by the clipping scale this
    /// object holds on the device (set by its last <see cref="PercentileClipping.Observe{TGrad}"/>, which the caller
    /// runs before the step). For a shard of a parameter this is the whole parameter's object.
    /// </summary>
    public PercentileClipping? Clipping { get; init; }

    /// <summary>
    /// For a shard of a parameter (see <see cref="Optimizer8BitState.CreateShard"/>): the index of the shard's first
    /// element in the whole parameter, so that stochastic rounding draws the whole parameter's random bits and the
    /// shard's step is bit-identical to the whole's. Must equal the state's <see cref="Optimizer8BitState.ShardStart"/>.
    /// Default 0 (a whole parameter).
    /// </summary>
    public long ElementOffset { get; init; }
}

/// <summary>
/// Fused block-wise 8-bit optimizers (Dettmers et al., "8-bit Optimizers via Block-wise Quantization"; bitsandbytes'
/// <c>kOptimizerStatic8bit*Blockwise</c>): one kernel per step dequantizes each state with its block's old scale,
/// updates parameter and states in f32, computes the new per-block scale and requantizes, in one pass over
/// parameters, gradients and states.
/// </summary>
/// <remarks>
/// <para><b>Math.</b> Each <see cref="OptimizerKind"/> follows torch.optim (see its member docs): Adam's eps sits
/// outside the square root on the bias-corrected scale; AdamW and Lion decay p ←p·(1 − lr·wd) BEFORE the update, as
/// torch does (bitsandbytes decays after the step, a difference of O(lr²·wd) per step); Adam, Momentum, RMSprop and
/// Adagrad use L2 decay. Bias corrections are computed on the host from <c>step</c> in double precision and passed
/// by value, so a step never synchronizes the host.</para>
/// <para><b>Quantization.</b> Signed states use bitsandbytes' signed dynamic map, non-negative states the unsigned
/// map (bitsandbytes uses the signed map for RMSprop/Adagrad, wasting the sign bit); nearest code with the code
/// books' single tie rule (exact midpoint → lower code), on every device. Scales are fp32 per block. The signed map
/// has +1.0 but no −1.0, so a block whose extreme is negative is scaled by absmax / 0.99296874: the extreme maps to
/// the −0.99296874 code exactly and does not shrink by 0.7 % at every requantization (bitsandbytes' drift).
/// An all-zero block gets scale 0 and zero codes.</para>
/// <para><b>Non-finite policy.</b> An element whose update is not finite — NaN or ±Inf gradient, g² overflowing
/// f32, a non-finite parameter under L2 decay — is skipped: its parameter and its (dequantized) states keep their old
/// values and it does not take part in any decision about other elements, so no state ever becomes NaN/Inf and no
/// block is poisoned. Skipped elements can be counted on the device (<see cref="OptimizerStepOptions.SkippedCount"/>).
/// bitsandbytes instead zeroes both Adam states of such an element.</para>
/// <para><b>Types.</b> Parameters f32, f16 (<see cref="ILGPU.Half"/>) or bf16 (<see cref="BFloat16"/>); gradients
/// the parameter type or f32; the update runs in f32; f16/bf16 parameters are rounded to nearest even, or
/// stochastically (<see cref="OptimizerStepOptions.StochasticRoundingSeed"/>).</para>
/// </remarks>
public static class Optimizer8Bit
{
    /// <summary>
    /// One optimizer step, enqueued on the parameters' device stream: reads <paramref name="gradients"/>, updates
    /// <paramref name="state"/> and <paramref name="parameters"/> in place. All arguments are validated before
    /// anything is launched; on an exception nothing is written.
    /// </summary>
    /// <param name="gradients">Dense gradients, same element count as the parameters; element type TParam or float.</param>
    /// <param name="state">The optimizer's states for these parameters (its <see cref="Optimizer8BitState.Kind"/> selects the optimizer).</param>
    /// <param name="settings">Hyper-parameters of this step.</param>
    /// <param name="step">1-based step number (bias correction; Momentum's first step).</param>
    /// <param name="parameters">Dense parameters, updated in place.</param>
    /// <param name="options">Stochastic rounding and the skipped-element counter.</param>
    public static void Step<TParam, TGrad>(ReadOnlyDeviceTensorSpan<TGrad> gradients, Optimizer8BitState state,
        OptimizerSettings settings, long step, DeviceTensorSpan<TParam> parameters, OptimizerStepOptions options = default)
        where TParam : unmanaged where TGrad : unmanaged =>
        StepWithGeometry(gradients, state, settings, step, parameters, options, lanesCap: 0);

    /// <summary>The step with an explicit cap on lanes per block (0: the device's default geometry).</summary>
    internal static void StepWithGeometry<TParam, TGrad>(ReadOnlyDeviceTensorSpan<TGrad> gradients, Optimizer8BitState state,
        OptimizerSettings settings, long step, DeviceTensorSpan<TParam> parameters, OptimizerStepOptions options, int lanesCap)
        where TParam : unmanaged where TGrad : unmanaged
    {
        Require.Supported<TParam>(nameof(parameters));
        if (typeof(TGrad) != typeof(TParam) && typeof(TGrad) != typeof(float))
            throw new ArgumentException(
                $"gradients have element type {typeof(TGrad).Name} but must be {typeof(TParam).Name} (the parameters' type) or float.",
                nameof(gradients));
        ArgumentNullException.ThrowIfNull(state);
        state.ThrowIfDisposed();
        if (parameters.IsEmptyView) throw new ArgumentException("parameters is an empty (default) view.", nameof(parameters));
        if (gradients.IsEmptyView) throw new ArgumentException("gradients is an empty (default) view.", nameof(gradients));
        // The state is the anchor (it was created for these parameters), so a mismatch names the operand that moved.
        var device = state.Device;
        Require.SameDevice(device, parameters.Device, nameof(parameters));
        Require.SameDevice(device, gradients.Device, nameof(gradients));
        Require.Dense(parameters, nameof(parameters));
        Require.Dense(gradients, nameof(gradients));
        Require.Length(parameters.FlattenedLength, state.Length, nameof(parameters), $"the {state.Kind} state of {state.Length} elements");
        Require.Length(gradients.FlattenedLength, state.Length, nameof(gradients), $"the {state.Kind} state of {state.Length} elements");
        settings.Validate(nameof(settings));
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "Steps are counted from 1.");
        var counter = options.SkippedCount;
        bool count = !counter.IsEmptyView;
        if (count)
        {
            Require.SameDevice(device, counter.Device, nameof(options.SkippedCount));
            Require.Dense(counter, nameof(options.SkippedCount));
            Require.Length(counter.FlattenedLength, 1, nameof(options.SkippedCount), "the skipped-element counter");
        }
        // parameters are updated in place (read and written by the same thread); gradients and the counter must be elsewhere.
        var fp = Footprint.Of(parameters, nameof(parameters));
        var fg = Footprint.Of(gradients, nameof(gradients));
        Require.Disjoint(fp, fg);
        Require.Disjoint(Footprint.Of(counter, nameof(options.SkippedCount)), fp, fg);

        float gradientScale = options.GradientScale ?? 1f;
        if (!float.IsFinite(gradientScale) || gradientScale < 0)
            throw new ArgumentOutOfRangeException(nameof(options.GradientScale), gradientScale, "GradientScale must be finite and ≥ 0.");
        var clipping = options.Clipping;
        if (clipping is not null)
        {
            clipping.ThrowIfDisposed();
            Require.SameDevice(device, clipping.Device, nameof(options.Clipping));
        }

        if (options.ElementOffset != state.ShardStart)
            throw new ArgumentException(
                $"options.ElementOffset is {options.ElementOffset} but the state is the shard starting at element {state.ShardStart}.",
                nameof(options));

        var k = StepScalars.From(settings, step, gradientScale);
        var p = parameters.View.AsContiguous();
        var g = gradients.View.AsContiguous();
        // The CPU accelerator runs one OS thread per group thread and its barriers get costly with many: at most 32.
        int groupSize = device.IsCuda ? 256 : Math.Min(32, device.Accelerator.MaxNumThreadsPerGroup);
        var launch = StepLaunch.For(device.Accelerator, groupSize, state.Length, state.BlockSize,
            lanesCap > 0 ? lanesCap : device.IsCuda ? int.MaxValue : 1);
        // Buffers start 256-byte aligned, so a view starting on a 4-element boundary has aligned vector accesses.
        launch.Vectorized = ((IContiguousArrayView)p).Index % 4 == 0 && ((IContiguousArrayView)g).Index % 4 == 0 ? 1 : 0;
        launch.Signed1 = state.Kind.IsSigned(0) ? 1 : 0;
        launch.Signed2 = state.StateCount == 2 && state.Kind.IsSigned(1) ? 1 : 0;
        launch.CountSkipped = count ? 1 : 0;
        launch.Stochastic = options.StochasticRoundingSeed.HasValue && typeof(TParam) != typeof(float) ? 1 : 0;
        launch.Seed = options.StochasticRoundingSeed ?? 0;
        launch.Step = step;
        launch.ElementOffset = state.ShardStart;
        var skipped = count ? counter.View.AsContiguous() : state.DummyCounter;
        var clipScale = clipping is not null ? clipping.ScaleView : state.UnitScale;

        var types = KernelTypes<TParam, TGrad>(state.Kind);
        if (state.IsQuantized)
        {
            var book1 = Optimizer8BitState.BookFor(state.Kind, 0).Upload(device);
            var book2 = Optimizer8BitState.BookFor(state.Kind, state.StateCount - 1).Upload(device);
            var kernel = device.GetKernel(("optim8.quantized", types.Key), acc =>
                acc.LoadCatalogKernel(Method(nameof(Optimizer8BitKernels.QuantizedStep), types)
                    .CreateDelegate<Action<ArrayView<TParam>, ArrayView<TGrad>, ArrayView<byte>, ArrayView<float>,
                        ArrayView<byte>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                        ArrayView<float>, ArrayView<int>, ArrayView<float>, StepScalars, StepLaunch>>()));
            int groups = device.GroupsFor(launch.TileCount * groupSize, groupSize);
            var config = new KernelConfig(groups, groupSize, SharedMemoryConfig.RequestDynamic<int>(launch.SharedInts(state.StateCount)));
            kernel(device.Stream, config, p, g, state.CodesView(0), state.AbsmaxView(0), state.CodesView(1), state.AbsmaxView(1),
                book1.Values, book1.SearchMidpoints, book2.Values, book2.SearchMidpoints, skipped, clipScale, k, launch);
        }
        else
        {
            var kernel = device.GetKernel(("optim8.f32", types.Key), acc =>
                acc.LoadCatalogKernel(Method(nameof(Optimizer8BitKernels.F32Step), types)
                    .CreateDelegate<Action<ArrayView<TParam>, ArrayView<TGrad>, ArrayView<float>, ArrayView<float>,
                        ArrayView<int>, ArrayView<float>, StepScalars, StepLaunch>>()));
            int groups = device.GroupsFor(state.Length, groupSize);
            kernel(device.Stream, new KernelConfig(groups, groupSize), p, g, state.ValuesView(0), state.ValuesView(1), skipped, clipScale, k, launch);
        }
    }

    private readonly record struct Types(Type Param, Type ParamElement, Type Grad, Type GradElement, Type Rule)
    {
        public (Type, Type, Type) Key => (Param, Grad, Rule);
    }

    private static Types KernelTypes<TParam, TGrad>(OptimizerKind kind) where TParam : unmanaged where TGrad : unmanaged =>
        new(typeof(TParam), ParameterElement(typeof(TParam)), typeof(TGrad), GradientElement(typeof(TGrad)), UpdateRules.TypeOf(kind));

    internal static Type ParameterElement(Type t) =>
        t == typeof(float) ? typeof(F32Parameter) : t == typeof(DeviceHalf) ? typeof(F16Parameter) : typeof(BF16Parameter);

    internal static Type GradientElement(Type t) =>
        t == typeof(float) ? typeof(F32) : t == typeof(DeviceHalf) ? typeof(F16) : typeof(BF16);

    private static MethodInfo Method(string name, Types t) =>
        typeof(Optimizer8BitKernels).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!
            .MakeGenericMethod(t.Param, t.ParamElement, t.Grad, t.GradElement, t.Rule);
}
