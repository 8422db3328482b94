using MQTTnet;
using MQTTnet.Formatter;
using Polly;
using Polly.Retry;

namespace AnomalyMonitor.Mqtt;

/// <summary>Where the broker is and how to log in. The password never leaves this class except to the client library.</summary>
public sealed class MqttConnection(MqttOptions options, string instance = "")
{
    public MqttOptions Options => options;

    /// <summary>The client id of one of this service's connections: ClientId (or anomaly-monitor-instance), then the role.</summary>
    public string ClientId(string role) =>
        $"{(string.IsNullOrWhiteSpace(options.ClientId) ? $"anomaly-monitor-{(instance.Length > 0 ? instance : "default")}" : options.ClientId)}-{role}";

    public bool Embedded => string.IsNullOrWhiteSpace(options.Broker);

    public (string Host, int Port, bool Tls) Endpoint()
    {
        if (Embedded) return (EmbeddedHost(options.Embedded.Address), options.Embedded.Port, false);
        return ParseBroker(options.Broker);
    }

    /// <summary>Where this service's own clients reach the embedded broker: its address, or loopback when it listens on all.</summary>
    private static string EmbeddedHost(string address) =>
        System.Net.IPAddress.TryParse(address, out var ip) && !ip.Equals(System.Net.IPAddress.Any) && !ip.Equals(System.Net.IPAddress.IPv6Any)
            ? ip.ToString()
            : ip?.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "::1" : "127.0.0.1";

    /// <summary>host:port, mqtt://host:port or mqtts://host:port (TLS); the port defaults to 1883, or 8883 with TLS.</summary>
    public static (string Host, int Port, bool Tls) ParseBroker(string broker)
    {
        var text = broker.Trim();
        bool tls = text.StartsWith("mqtts://", StringComparison.OrdinalIgnoreCase);
        if (tls) text = text[8..];
        else if (text.StartsWith("mqtt://", StringComparison.OrdinalIgnoreCase)) text = text[7..];
        var colon = text.LastIndexOf(':');
        if (colon < 0) return (text, tls ? 8883 : 1883, tls);
        if (!int.TryParse(text[(colon + 1)..], out var port) || port is < 1 or > 65535)
            throw new FormatException($"Mqtt:Broker '{broker}' has no valid port; use host:port or mqtts://host:port.");
        return (text[..colon], port, tls);
    }

    public string Describe()
    {
        var (host, port, tls) = Endpoint();
        return $"{(tls ? "mqtts" : "mqtt")}://{host}:{port}{(Embedded ? " (embedded)" : "")}";
    }

    /// <summary>Password from Mqtt:Password (environment: ANOMALYMONITOR__MQTT__PASSWORD) or Mqtt:PasswordFile; a relative file is looked up in systemd's credentials directory.</summary>
    public string? Password()
    {
        if (!string.IsNullOrEmpty(options.Password)) return options.Password;
        if (string.IsNullOrEmpty(options.PasswordFile)) return null;
        var path = options.PasswordFile;
        if (!Path.IsPathRooted(path) && Environment.GetEnvironmentVariable("CREDENTIALS_DIRECTORY") is { Length: > 0 } creds)
            path = Path.Combine(creds, path);
        return File.ReadAllText(path).TrimEnd('\r', '\n');
    }

    public MqttClientOptionsBuilder Builder(string clientIdSuffix)
    {
        var (host, port, tls) = Endpoint();
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithClientId(ClientId(clientIdSuffix))
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithKeepAlivePeriod(options.KeepAlive)
            .WithTimeout(ConnectTimeout);
        if (tls)
        {
            builder.WithTlsOptions(t =>
            {
                t.UseTls();
                if (options.AllowUntrustedCertificates) t.WithAllowUntrustedCertificates().WithIgnoreCertificateChainErrors().WithCertificateValidationHandler(_ => true);
            });
        }
        if (!string.IsNullOrEmpty(options.Username)) builder.WithCredentials(options.Username, Password());
        return builder;
    }

    /// <summary>
    /// The socket buffers MQTTnet asks the kernel for (it sets SO_RCVBUF and SO_SNDBUF to its BufferSize, 8 KiB by
    /// default, which also turns off Linux's autotuning). A 16 KiB receive buffer is a quarter of loopback's
    /// 64 KiB segment: once a backlog filled it, the broker's sends were paced by the receive window and 200 ms
    /// timers, and a queue of 20,000 messages drained at 28–64 a second with both processes idle (ss showed
    /// rb16384 on our side, rwnd_limited 97% and 3 MB unsent on Mosquitto's). The kernel caps what is asked at
    /// net.core.rmem_max (208 KiB on a stock Debian, 4 MiB on the development machine): either is well over a segment.
    /// </summary>
    public const int SocketBufferBytes = 1024 * 1024;

    /// <summary>How long a connect may wait for the TCP/TLS handshake and the broker's CONNACK.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Connects within <see cref="ConnectTimeout"/>. The client's own timeout is not applied when the caller's token
    /// can be cancelled, and a peer that accepts TCP but never answers (a hung broker, a TLS proxy before a dead one)
    /// would hold the reconnect loop as long as it stays silent; the deadline turns that into a TimeoutException,
    /// which the reconnect pipeline retries (it does not retry cancellations).
    /// </summary>
    public static async Task<MqttClientConnectResult> ConnectAsync(IMqttClient client, MqttClientOptionsBuilder builder, CancellationToken token)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(token);
        deadline.CancelAfter(ConnectTimeout);
        try
        {
            return await client.ConnectAsync(Build(builder), deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (deadline.IsCancellationRequested && !token.IsCancellationRequested)
        {
            // MQTTnet reports the cancelled handshake as a failed connect ("connection closed"): say what happened.
            throw new TimeoutException($"no answer from the broker within {ConnectTimeout.TotalSeconds:0} s", e);
        }
    }

    /// <summary>Builds the options of one of this service's connections, with <see cref="SocketBufferBytes"/>.</summary>
    public static MqttClientOptions Build(MqttClientOptionsBuilder builder)
    {
        var options = builder.Build();
        if (options.ChannelOptions is MqttClientTcpOptions tcp) tcp.BufferSize = SocketBufferBytes;
        return options;
    }

    /// <summary>Reconnects forever with exponential backoff and jitter, between ReconnectMin and ReconnectMax.</summary>
    public ResiliencePipeline Reconnect(Action<string> onRetry) => new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not OperationCanceledException),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.ReconnectMin,
            MaxDelay = options.ReconnectMax,
            MaxRetryAttempts = int.MaxValue,
            OnRetry = args =>
            {
                onRetry(args.Outcome.Exception?.Message ?? "not connected");
                return default;
            },
        })
        .Build();
}
