namespace AnomalyMonitor.Ingest;

/// <summary>
/// Where items come from: the watched folder, the MQTT topics, the HTTP scoring endpoint. A source hands
/// items to the <see cref="Intake"/> and hears back exactly once per item, through <see cref="Settle"/>,
/// when every image in it is judged (its records durable), rejected or handed back; then it moves the
/// file, acknowledges the message or answers the request. A new source is one class implementing this
/// and one registration line (Hosting/ServiceCollectionExtensions.cs).
/// </summary>
public interface IIngestSource
{
    /// <summary>The source's name in logs and /api/status: "folder", "mqtt", "http".</summary>
    string Name { get; }

    /// <summary>Configured to take in items (a disabled source is listed, and ignored by readiness).</summary>
    bool Enabled => true;

    /// <summary>For a source with a connection (MQTT): whether it is up; null for one without. Readiness needs every enabled one up.</summary>
    bool? Connected => null;

    /// <summary>
    /// Exactly once per item, from a pipeline thread, after every durable sink recorded its judged images.
    /// <see cref="IngestItem.HandedBack"/> says the item was not (or not entirely) judged: keep it to offer
    /// again. Must not block.
    /// </summary>
    void Settle(IngestItem item);

    /// <summary>
    /// Learning state: every image of the item is durably held for the first model and will be judged once
    /// it exists (then <see cref="Settle"/> follows). A source that can let go of the item now (an MQTT
    /// message) may acknowledge it here.
    /// </summary>
    void Held(IngestItem item)
    {
    }
}
