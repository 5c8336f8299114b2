using System.Globalization;

namespace Kernels.Tensors;

/// <summary>
/// How Python's <c>json</c> module writes numbers, for files whose bytes must match what a Python tool wrote
/// (bitsandbytes' packed quant_state, PEFT's adapter_config.json).
/// </summary>
public static class PythonJson
{
    /// <summary>
    /// Python's <c>repr</c> of a float, as <c>json.dumps</c> writes it: the shortest round-trip digits, fixed notation
    /// for decimal exponents −4…15 (with ".0" on whole numbers), else "d.ddde±XX"; NaN, Infinity, -Infinity.
    /// </summary>
    /// <param name="value">The value.</param>
    public static string Repr(double value)
    {
        if (double.IsNaN(value)) return "NaN";
        if (double.IsInfinity(value)) return value > 0 ? "Infinity" : "-Infinity";
        string sign = double.IsNegative(value) ? "-" : "";
        if (value == 0) return sign + "0.0";
        string r = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOfAny(['E', 'e']), exp = 0;
        string m = r;
        if (e >= 0)
        {
            exp = int.Parse(r[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            m = r[..e];
        }
        int dot = m.IndexOf('.');
        string digits = dot < 0 ? m : m.Remove(dot, 1);
        int point = (dot < 0 ? m.Length : dot) + exp; // value = 0.digits × 10^point
        int lead = digits.Length - digits.TrimStart('0').Length;
        digits = digits[lead..].TrimEnd('0');
        point -= lead;
        int sci = point - 1;
        if (sci >= -4 && sci < 16)
        {
            if (point <= 0) return sign + "0." + new string('0', -point) + digits;
            if (point >= digits.Length) return sign + digits + new string('0', point - digits.Length) + ".0";
            return sign + digits[..point] + "." + digits[point..];
        }
        string mantissa = digits.Length > 1 ? digits[0] + "." + digits[1..] : digits;
        return sign + mantissa + "e" + (sci < 0 ? "-" : "+") + Math.Abs(sci).ToString("00", CultureInfo.InvariantCulture);
    }
}
