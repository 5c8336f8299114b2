using System.Buffers.Binary;
using System.Text;

namespace Kernels.Tests.Foundation;

/// <summary>
/// Writes safetensors files the way the owner's writer does — the Rust <c>safetensors</c> crate behind
/// <c>safetensors.torch.save_file</c> (PEFT's and transformers' <c>save_pretrained</c>): tensors sorted by descending
/// dtype (the crate's <c>Dtype</c> enum order) and then by name, the header compact JSON with "__metadata__" first,
/// space-padded to a multiple of 8. Built here by string concatenation, independently of the library's SafetensorsFile,
/// so tests can hand the library a file in the owner's layout.
/// </summary>
internal static class OwnerSafetensors
{
    internal sealed record Tensor(string Name, string DType, long[] Shape, byte[] Data);

    // safetensors/src/tensor.rs, enum Dtype (declaration order = derived Ord).
    private static readonly string[] DTypeOrder = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];

    internal static byte[] Bytes(IEnumerable<Tensor> tensors, string? format = "pt")
    {
        var sorted = tensors.OrderByDescending(t => Array.IndexOf(DTypeOrder, t.DType)).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();
        var header = new StringBuilder("{");
        if (format is not null) header.Append("\"__metadata__\":{\"format\":\"").Append(format).Append("\"}");
        long offset = 0;
        foreach (var t in sorted)
        {
            if (header.Length > 1) header.Append(',');
            header.Append('"').Append(t.Name).Append("\":{\"dtype\":\"").Append(t.DType).Append("\",\"shape\":[")
                .Append(string.Join(",", t.Shape)).Append("],\"data_offsets\":[").Append(offset).Append(',').Append(offset + t.Data.Length).Append("]}");
            offset += t.Data.Length;
        }
        header.Append('}');
        while (header.Length % 8 != 0) header.Append(' ');
        var h = Encoding.UTF8.GetBytes(header.ToString());
        var file = new byte[8 + h.Length + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        long at = 8 + h.Length;
        foreach (var t in sorted)
        {
            t.Data.CopyTo(file, at);
            at += t.Data.Length;
        }
        return file;
    }

    internal static byte[] F32(float[] values)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(4 * i), values[i]);
        return b;
    }

    internal static byte[] U16(ushort[] values)
    {
        var b = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2 * i), values[i]);
        return b;
    }

    /// <summary>A scratch directory removed on dispose.</summary>
    internal sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("kernels-ckpt-").FullName;

        public string File(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
        }
    }
}
