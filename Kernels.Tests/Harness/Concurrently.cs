namespace Kernels.Tests.Harness;

/// <summary>Runs one body on several host threads at once, released together by a barrier, and rethrows the first failure.</summary>
public static class Concurrently
{
    /// <summary>Calls <paramref name="body"/>(thread, round) for every thread and round; all threads start each round together.</summary>
    public static void Run(int threads, int rounds, Action<int, int> body)
    {
        using var barrier = new Barrier(threads);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            for (int round = 0; round < rounds; round++)
            {
                barrier.SignalAndWait();
                try { body(t, round); }
                catch (Exception e) { failures.Enqueue(e); }
            }
        }) { IsBackground = true }).ToList();
        foreach (var w in workers) w.Start();
        foreach (var w in workers) w.Join();
        if (!failures.IsEmpty) throw new AggregateException(failures);
    }
}
