using System.Diagnostics;
using Xunit;

namespace Kernels.Tests.Reliability;

/// <summary>
/// The tour as a command-line program (the built Kernels.Bench executable, on the CPU accelerator): bad arguments are
/// one line on stderr and exit code 2 before anything runs; a pattern that matches nothing says so; progress is plain
/// lines when stderr is not a terminal.
/// </summary>
public class TourCommandLineTests
{
    private static string Bench()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "kernels.sln"))) dir = dir.Parent;
        if (dir is null) throw Xunit.Sdk.SkipException.ForSkip("not run from a source checkout (no kernels.sln above the test binary)");
        // The test binary sits in Kernels.Tests/bin/<Configuration>/<tfm>/; the bench has the same layout.
        var tail = Path.GetRelativePath(Path.Combine(dir.FullName, "Kernels.Tests"), AppContext.BaseDirectory);
        var exe = Path.Combine(dir.FullName, "Kernels.Bench", tail, "Kernels.Bench");
        if (!File.Exists(exe))
        {
            // The test project builds the bench first (a ProjectReference), so in CI a missing executable is a defect.
            if (Environment.GetEnvironmentVariable("CI") == "true") Assert.Fail($"Kernels.Bench is not built at {exe}");
            throw Xunit.Sdk.SkipException.ForSkip($"Kernels.Bench is not built at {exe}");
        }
        return exe;
    }

    private static (int Code, string Out, string Err) Tour(params string[] args)
    {
        var start = new ProcessStartInfo(Bench()) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("tour");
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["KERNELS_DEVICE"] = "cpu";
        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEndAsync();
        var output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(3)), "the tour did not finish within 3 minutes");
        return (p.ExitCode, output, err.Result);
    }

    [Theory]
    [InlineData("--ops", "[")]
    [InlineData("--json")]
    [InlineData("--ops")]
    [InlineData("--json", "/missing/dir/x.json")]
    [InlineData("--bogus")]
    public void BadArgumentsAreOneLineAndExitCodeTwo(params string[] args)
    {
        var (code, output, err) = Tour(args);
        Assert.Equal(2, code);
        Assert.Equal("", output); // nothing ran: no device line, no copy bandwidth
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("tour: ", lines[0]);
        Assert.DoesNotContain("Exception", lines[0]);
    }

    [Fact]
    public void APatternThatMatchesNothingSaysSo()
    {
        var (code, output, err) = Tour("--ops", "nomatch");
        Assert.NotEqual(0, code);
        Assert.Contains("matched none", err);
        Assert.DoesNotContain("verified", output);
    }

    [Fact]
    public void FullShapesOnTheCpuWarn()
    {
        var (_, _, err) = Tour("--full", "--ops", "nomatch");
        Assert.Contains("warning: --full on the CPU accelerator", err);
    }

    [Fact]
    public void ProgressIsPlainLinesWhenStderrIsNotATerminal()
    {
        var (code, output, err) = Tour("--ops", "^Dense gemv");
        Assert.Equal(0, code);
        Assert.Contains("all 1 rows verified", output);
        Assert.DoesNotContain('\r', err);
        Assert.Contains("[1/1] Dense: gemv", err);
    }
}
