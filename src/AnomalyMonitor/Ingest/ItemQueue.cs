using System.Threading.Channels;

namespace AnomalyMonitor.Ingest;

/// <summary>
/// The bounded entry to the pipeline. When it is full, sources wait (back-pressure): a folder stops
/// claiming files and MQTT messages stay unacknowledged with the broker, so memory stays capped.
/// </summary>
public sealed class ItemQueue(int capacity)
{
    private readonly Channel<IngestItem> _channel = Channel.CreateBounded<IngestItem>(new BoundedChannelOptions(capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = false,
        SingleWriter = false,
    });

    public ChannelReader<IngestItem> Reader => _channel.Reader;
    public int Count => _channel.Reader.Count;

    /// <summary>Waits for room; false once the pipeline has shut down (the caller keeps the item).</summary>
    public async ValueTask<bool> WriteAsync(IngestItem item, CancellationToken cancellationToken)
    {
        try
        {
            while (await _channel.Writer.WaitToWriteAsync(cancellationToken).ConfigureAwait(false))
            {
                if (_channel.Writer.TryWrite(item)) return true;
            }
            return false;
        }
        catch (ChannelClosedException)
        {
            return false;
        }
    }

    public void Close() => _channel.Writer.TryComplete();
}
