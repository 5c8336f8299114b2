using Kernels.Tensors;
using Xunit;

namespace Kernels.Tests.Foundation;

/// <summary>SafetensorsFile.WriteSorted writes the bytes the safetensors crate writes for the same tensors.</summary>
public class SafetensorsSortedTests
{
    [Fact]
    public void WritesTheCratesOrderAndHeaderByteForByte()
    {
        // Mixed dtypes given in a scrambled order; the crate sorts by descending dtype, then name ("b.x" < "b_y" ordinally).
        var tensors = new OwnerSafetensors.Tensor[]
        {
            new("u8", "U8", [3], [1, 2, 3]),
            new("b_y", "F32", [1], OwnerSafetensors.F32([2.5f])),
            new("a.half", "F16", [2, 1], OwnerSafetensors.U16([0x3C00, 0xC000])),
            new("b.x", "F32", [2], OwnerSafetensors.F32([1f, -1f])),
            new("ids", "I64", [1], BitConverter.GetBytes(7L)),
            new("bf", "BF16", [1], OwnerSafetensors.U16([0x3F80])),
        };
        using var dir = new OwnerSafetensors.TempDir();
        SafetensorsFile.WriteSorted(dir.File("a.safetensors"), tensors.Select(t => new SafetensorsFile.Tensor(t.Name, t.DType, t.Shape, t.Data)),
            new Dictionary<string, string> { ["format"] = "pt" });
        Assert.Equal(OwnerSafetensors.Bytes(tensors), File.ReadAllBytes(dir.File("a.safetensors")));

        var read = SafetensorsFile.Open(dir.File("a.safetensors"));
        Assert.Equal([1, 2, 3], read.ReadBytes("u8"));
        Assert.Equal(OwnerSafetensors.U16([0x3C00, 0xC000]), read.ReadBytes("a.half"));
        Assert.Equal("pt", read.Metadata["format"]);
    }

    [Fact]
    public void RefusesDuplicateNames()
    {
        using var dir = new OwnerSafetensors.TempDir();
        var ex = Assert.Throws<ArgumentException>(() => SafetensorsFile.WriteSorted(dir.File("d.safetensors"),
            [new("t", "U8", [1], [1]), new("t", "F32", [1], new byte[4])], null));
        Assert.Contains("'t'", ex.Message);
        Assert.False(File.Exists(dir.File("d.safetensors")));
    }
}
