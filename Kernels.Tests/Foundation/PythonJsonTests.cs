using Kernels.Tensors;
using Xunit;

namespace Kernels.Tests.Foundation;

/// <summary>PythonJson.Repr against what CPython 3's repr(float) / json.dumps prints for the same doubles.</summary>
public class PythonJsonTests
{
    [Theory]
    [InlineData(0.0, "0.0")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(1.0, "1.0")]
    [InlineData(123.0, "123.0")]
    [InlineData(-2.5, "-2.5")]
    [InlineData(0.05, "0.05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(0.00001, "1e-05")]
    [InlineData(0.000015, "1.5e-05")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1.5e16, "1.5e+16")]
    [InlineData(1e100, "1e+100")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(0.03125, "0.03125")]
    [InlineData(double.NaN, "NaN")]
    [InlineData(double.PositiveInfinity, "Infinity")]
    [InlineData(double.NegativeInfinity, "-Infinity")]
    public void MatchesCPythonRepr(double value, string expected) => Assert.Equal(expected, PythonJson.Repr(value));

    [Fact]
    public void AnFp32ValueWidenedToDoublePrintsAllItsDoubleDigits()
    {
        // torch.tensor(0.1).item() → the fp32 nearest 0.1 as a Python float: repr gives 17 significant digits.
        Assert.Equal("0.10000000149011612", PythonJson.Repr((double)0.1f));
        Assert.Equal("-0.0078125", PythonJson.Repr((double)-0.0078125f));
    }
}
