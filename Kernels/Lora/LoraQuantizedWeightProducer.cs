using ILGPU;
using Kernels.Engine;
using Kernels.Quantization;
using Kernels.Runtime;
using Kernels.Tensors;
using DeviceHalf = ILGPU.Half;

namespace Kernels.Lora;

/// <summary>
/// QLoRA's base weight inside the tile engine: a weight-tile producer that dequantizes a block-wise quantized W
/// (<see cref="BlockwiseQuantized"/>: 8-bit or NF4/FP4 codes, fp32 or nested absmax, N×K row-major flattened) straight
/// into the swizzled shared tile, so no dequantized copy of W ever exists in memory. Each element is
/// <c>Values[code]·absmax</c> in f32 (nested: absmax = nestedValues[c]·nestedAbsmax + offset), rounded to the mma
/// element type exactly as <c>Blockwise.Dequantize</c> rounds it, so the GEMM sees the same weights as
/// dequantize-then-multiply. With <see cref="Transposed"/> = 1 it produces Wᵀ for the backward's dX = dY·W.
/// </summary>
internal readonly struct LoraQuantizedWeightProducer<TMma> : IWeightTileProducer where TMma : struct, IMmaKind
{
    public readonly ArrayView<byte> Codes;
    public readonly ArrayView<float> Absmax;
    public readonly ArrayView<byte> NestedCodes;
    public readonly ArrayView<float> NestedAbsmax;
    public readonly ArrayView<float> NestedOffset;
    public readonly ArrayView<float> Values;
    public readonly ArrayView<float> NestedValues;
    /// <summary>Rows of the stored W (N).</summary>
    public readonly int Rows;
    /// <summary>Columns of the stored W (K).</summary>
    public readonly int Columns;
    public readonly int Bits;
    public readonly int BlockShift;
    public readonly int Nested;
    /// <summary>0: tiles of W (forward); 1: tiles of Wᵀ (dX).</summary>
    public readonly int Transposed;

    public LoraQuantizedWeightProducer(BlockwiseQuantized w, int rows, int columns, int transposed)
    {
        var device = w.Device;
        Codes = w.Codes.Span.View.AsContiguous();
        Values = w.Map.Upload(device).Values;
        Nested = w.IsNested ? 1 : 0;
        if (w.IsNested)
        {
            NestedCodes = w.NestedCodes!.Span.View.AsContiguous();
            NestedAbsmax = w.NestedAbsmax!.Span.View.AsContiguous();
            NestedOffset = w.NestedOffset!.Span.View.AsContiguous();
            NestedValues = CodeBook.DynamicSigned.Upload(device).Values;
            Absmax = NestedAbsmax;
        }
        else
        {
            Absmax = w.Absmax!.Span.View.AsContiguous();
            NestedCodes = Codes;
            NestedAbsmax = Absmax;
            NestedOffset = Absmax;
            NestedValues = Values;
        }
        Rows = rows;
        Columns = columns;
        Bits = w.Map.Bits;
        BlockShift = System.Numerics.BitOperations.Log2((uint)w.BlockSize);
        Transposed = transposed;
    }

    public bool HasEndPhase => false;

    public void Begin(in WeightTileRequest request)
    {
        int tileRows = request.Rows;
        int words = tileRows * (TileEngineConstants.TileK / 2);
        for (int e = request.Thread; e < words; e += TileEngineConstants.Threads)
        {
            // Consecutive threads walk the stored row, where consecutive codes live.
            int i, j;
            if (Transposed != 0) { i = e % tileRows; j = (e / tileRows) * 2; }
            else { i = e / (TileEngineConstants.TileK / 2); j = (e % (TileEngineConstants.TileK / 2)) * 2; }
            int r = request.Row0 + i, c = request.K0 + j;
            uint lo = Weight(r, c), hi = Weight(r, c + 1);
            request.Shared[request.HalfIndex(i, j) >> 1] = lo | (hi << 16);
        }
    }

    public void End(in WeightTileRequest request) { }

    /// <summary>16-bit pattern of engine weight (row, column): W[row, column], or W[column, row] when transposed; 0 outside.</summary>
    private uint Weight(int row, int column)
    {
        int n = Transposed != 0 ? column : row, k = Transposed != 0 ? row : column;
        if (n >= Rows || k >= Columns) return 0u;
        long e = (long)n * Columns + k;
        int code = Bits == 8 ? Codes[e] : (Codes[e >> 1] >> ((e & 1) == 0 ? 4 : 0)) & 0xF;
        long block = e >> BlockShift;
        float scale = Nested != 0
            ? NestedValues[(int)NestedCodes[block]] * NestedAbsmax[block >> BlockwiseKernels.NestedBlockShift] + NestedOffset[0]
            : Absmax[block];
        float v = Values[code] * scale;
        return default(TMma).IsBFloat16 ? BFloat16.FromFloat(v).Bits : Fp16.NarrowBits(v);
    }
}
