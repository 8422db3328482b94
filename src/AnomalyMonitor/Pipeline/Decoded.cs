using AnomalyMonitor.Ingest;

namespace AnomalyMonitor.Pipeline;

/// <summary>An item with its pixels in the model layout. Rented pixels go back to the pool after scoring.</summary>
public readonly record struct Decoded(IngestItem Item, float[] Pixels, bool Rented)
{
    /// <summary>Returns rented pixels to the pool and tells the source what became of the item.</summary>
    public void Release(ItemResult result)
    {
        if (Rented) System.Buffers.ArrayPool<float>.Shared.Return(Pixels);
        Item.Complete(result);
    }
}
