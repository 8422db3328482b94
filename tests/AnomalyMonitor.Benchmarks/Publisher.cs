using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using MQTTnet;
using MQTTnet.Protocol;

namespace AnomalyMonitor.Benchmarks;

/// <summary>
/// The pipeline benchmark's publisher, run as a process of its own so that the service's CPU time is the
/// service's alone. Publishes QoS 1 messages from a payload file, as fast as the broker takes them (up to
/// 256 in flight) or at a set rate; with --envelope each becomes a JSON envelope carrying its send time
/// (Stopwatch ticks, the same monotonic clock in every process here) for the latency measurement.
/// </summary>
internal static class Publisher
{
    /// <summary>The payload file: for each payload, a flag byte (1 = anomaly), a 4-byte length and the bytes.</summary>
    public static void WritePayloads(string path, IEnumerable<(byte[] Bytes, bool Anomaly)> payloads)
    {
        using var file = File.Create(path);
        Span<byte> header = stackalloc byte[5];
        foreach (var (bytes, anomaly) in payloads)
        {
            header[0] = anomaly ? (byte)1 : (byte)0;
            BinaryPrimitives.WriteInt32LittleEndian(header[1..], bytes.Length);
            file.Write(header);
            file.Write(bytes);
        }
    }

    private static List<(byte[] Bytes, bool Anomaly)> ReadPayloads(string path)
    {
        var all = File.ReadAllBytes(path);
        var list = new List<(byte[], bool)>();
        for (int at = 0; at < all.Length;)
        {
            int n = BinaryPrimitives.ReadInt32LittleEndian(all.AsSpan(at + 1));
            list.Add((all.AsSpan(at + 5, n).ToArray(), all[at] == 1));
            at += 5 + n;
        }
        return list;
    }

    public static async Task<int> RunAsync(int port, string topic, string payloadFile, int count, double rate, bool envelope)
    {
        var payloads = ReadPayloads(payloadFile);
        using var client = new MqttClientFactory().CreateMqttClient();
        await client.ConnectAsync(AnomalyMonitor.Mqtt.MqttConnection.Build(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", port).WithClientId($"bench-pub-{Environment.ProcessId}")
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)));
        using var window = new SemaphoreSlim(256);
        var pending = new List<Task>();
        int anomalies = 0;
        Console.WriteLine("publishing");
        var clock = Stopwatch.StartNew();
        var interval = rate > 0 ? TimeSpan.FromSeconds(1 / rate) : TimeSpan.Zero;
        for (int i = 0; i < count; i++)
        {
            // Sleep rather than spin: a spinning publisher would take a core from the service on this 2-core machine.
            while (rate > 0 && clock.Elapsed < interval * i) await Task.Delay(1);
            var (bytes, anomaly) = payloads[i % payloads.Count];
            if (anomaly) anomalies++;
            var body = envelope
                ? Encoding.UTF8.GetBytes($"{{\"id\":\"pub-{i}\",\"image\":\"{Convert.ToBase64String(bytes)}\",\"metadata\":{{\"sent\":\"{Stopwatch.GetTimestamp().ToString(CultureInfo.InvariantCulture)}\"}}}}")
                : bytes;
            var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(body).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
            await window.WaitAsync();
            pending.Add(client.PublishAsync(message).ContinueWith(_ => window.Release(), TaskScheduler.Default));
            if (pending.Count > 4096) pending.RemoveAll(t => t.IsCompleted);
        }
        await Task.WhenAll(pending);
        Console.WriteLine($"published {count} ({anomalies} anomalous) in {clock.Elapsed.TotalSeconds:0.00} s");
        await client.DisconnectAsync();
        return 0;
    }
}
