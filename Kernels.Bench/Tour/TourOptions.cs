using System.Text.RegularExpressions;

namespace Kernels.Bench.Tour;

/// <summary>
/// The tour's command line, checked before anything runs: a value after every option that takes one, a pattern that
/// compiles, a JSON destination whose folder exists. A bad command line is a <see cref="TourUsageException"/> whose
/// message is one line; the runner prints it and exits with 2.
/// </summary>
/// <param name="Json">Where to write the rows as JSON, or null.</param>
/// <param name="Filter">Rows whose "family op" matches are run (case-insensitive), or null for all.</param>
/// <param name="Pattern">The text of <paramref name="Filter"/>.</param>
/// <param name="Full">True: LLM shapes; false: small shapes; null: full on a GPU, small on the CPU.</param>
public sealed record TourOptions(string? Json, Regex? Filter, string? Pattern, bool? Full)
{
    /// <summary>Parses and checks <paramref name="args"/> (the arguments after the verb).</summary>
    public static TourOptions Parse(IReadOnlyList<string> args)
    {
        string? json = null, pattern = null;
        bool? full = null;
        for (int i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--json": json = Value(args, ref i, "a file path"); break;
                case "--ops": pattern = Value(args, ref i, "a regular expression"); break;
                case "--full": full = true; break;
                case "--small": full = false; break;
                default: throw new TourUsageException($"unknown tour option '{args[i]}' (expected --ops REGEX, --json FILE, --full or --small)");
            }
        }
        Regex? filter = null;
        if (pattern is not null)
        {
            try { filter = new Regex(pattern, RegexOptions.IgnoreCase); }
            catch (ArgumentException e) { throw new TourUsageException($"--ops '{pattern}' is not a valid regular expression: {OneLine(e.Message)}"); }
        }
        if (json is not null)
        {
            string fullPath = Path.GetFullPath(json);
            string? folder = Path.GetDirectoryName(fullPath);
            if (Directory.Exists(fullPath)) throw new TourUsageException($"--json '{json}' is a folder; give a file path");
            if (folder is not null && !Directory.Exists(folder))
                throw new TourUsageException($"--json '{json}': the folder '{folder}' does not exist");
        }
        return new TourOptions(json, filter, pattern, full);
    }

    private static string Value(IReadOnlyList<string> args, ref int i, string what)
    {
        if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
            throw new TourUsageException($"{args[i]} needs {what}");
        return args[++i];
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}

/// <summary>A bad tour command line; the message is one line for the user.</summary>
public sealed class TourUsageException(string message) : Exception(message);
