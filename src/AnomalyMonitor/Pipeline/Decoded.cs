using AnomalyMonitor.Ingest;

namespace AnomalyMonitor.Pipeline;

/// <summary>An item with its pixels in the model layout. Rented pixels go back to the pool after scoring.</summary>
internal readonly record struct Decoded(IngestItem Item, float[] Pixels, bool Rented);
