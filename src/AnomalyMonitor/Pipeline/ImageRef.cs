using AnomalyMonitor.Ingest;

namespace AnomalyMonitor.Pipeline;

/// <summary>One image in a batch slot: the item it came from, its id, its "source" label and metadata.</summary>
/// <param name="WasHeld">Held for the first model (learning state) before it was judged.</param>
public sealed record ImageRef(IngestItem Item, string Id, string Source, IReadOnlyDictionary<string, string>? Metadata, bool WasHeld = false);
