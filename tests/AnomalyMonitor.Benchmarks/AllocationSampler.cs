using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// Which types this process allocates, from the runtime's own AllocationTick events (one about every 100 KB of
/// allocations, naming the type that crossed the mark): a sample, so the shares are estimates, but it needs no
/// profiler and names the allocator behind a gen-0 collection.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, GcKeyword);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) != true || e.PayloadNames is null) return;
        int type = e.PayloadNames.IndexOf("TypeName"), amount = e.PayloadNames.IndexOf("AllocationAmount64");
        if (type < 0 || amount < 0) return;
        long bytes = Convert.ToInt64(e.Payload![amount]);
        _bytes.AddOrUpdate(e.Payload[type] as string ?? "?", bytes, (_, sum) => sum + bytes);
    }

    /// <summary>The largest allocators so far, with their share of the sampled bytes.</summary>
    public string Top(int count)
    {
        var all = _bytes.ToArray();
        double total = Math.Max(1, all.Sum(p => p.Value));
        return string.Join(", ", all.OrderByDescending(p => p.Value).Take(count).Select(p => $"{p.Key} {p.Value / total:P0}"));
    }
}
