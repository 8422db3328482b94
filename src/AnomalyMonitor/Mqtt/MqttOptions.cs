using AnomalyMonitor.Configuration;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Mqtt;

public sealed class EmbeddedBrokerOptions
{
    public int Port { get; set; } = 1883;
    /// <summary>Loopback by default: an embedded broker with no authentication must not face the network.</summary>
    public string Address { get; set; } = "127.0.0.1";
    /// <summary>Messages queued for one client before the oldest are dropped (MQTTnet's rule); large, so that a slow subscriber loses nothing.</summary>
    public int MaxPendingMessages { get; set; } = 100_000;
}

public sealed class MqttOptions
{
    public const string Section = "Mqtt";
    /// <summary>Empty: host the embedded broker. Otherwise host:port or mqtts://host:port.</summary>
    public string Broker { get; set; } = "";
    /// <summary>
    /// Prefix of the client ids; "-ingest", "-alerts" and "-feedback" are appended. Empty (the default):
    /// "anomaly-monitor-" and the Fleet:Instance name, so that two services on one broker never share a
    /// session: the broker would hand it back and forth between them, one in-flight window at a time.
    /// </summary>
    public string ClientId { get; set; } = "";
    public string? Username { get; set; }
    public string? Password { get; set; }
    /// <summary>File holding the password (systemd LoadCredential puts it in $CREDENTIALS_DIRECTORY).</summary>
    public string? PasswordFile { get; set; }
    public bool AllowUntrustedCertificates { get; set; }
    public TimeSpan KeepAlive { get; set; } = TimeSpan.FromSeconds(15);
    public TimeSpan ReconnectMin { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan ReconnectMax { get; set; } = TimeSpan.FromSeconds(30);
    public EmbeddedBrokerOptions Embedded { get; set; } = new();
}

internal sealed class MqttOptionsValidator : IValidateOptions<MqttOptions>
{
    public ValidateOptionsResult Validate(string? name, MqttOptions o)
    {
        var f = new List<string>();
        if (!string.IsNullOrWhiteSpace(o.Broker))
        {
            try { MqttConnection.ParseBroker(o.Broker); }
            catch (FormatException e) { f.Add(e.Message); }
        }
        if (o.Embedded.Port is < 1 or > 65535) f.Add($"Mqtt:Embedded:Port must be 1-65535, was {o.Embedded.Port}.");
        OptionChecks.AtLeast(f, "Mqtt:Embedded:MaxPendingMessages", o.Embedded.MaxPendingMessages, 1);
        if (!System.Net.IPAddress.TryParse(o.Embedded.Address, out _)) f.Add($"Mqtt:Embedded:Address must be an IP address, was '{o.Embedded.Address}'.");
        if (o.ClientId.Length > 0 && string.IsNullOrWhiteSpace(o.ClientId)) f.Add("Mqtt:ClientId must not be blank (leave it empty for the default).");
        if (!string.IsNullOrEmpty(o.PasswordFile) && Path.IsPathRooted(o.PasswordFile) && !File.Exists(o.PasswordFile))
            f.Add($"Mqtt:PasswordFile '{o.PasswordFile}' does not exist.");
        OptionChecks.Positive(f, "Mqtt:KeepAlive", o.KeepAlive);
        OptionChecks.Positive(f, "Mqtt:ReconnectMin", o.ReconnectMin);
        if (o.ReconnectMax < o.ReconnectMin) f.Add("Mqtt:ReconnectMax must not be below Mqtt:ReconnectMin.");
        return OptionChecks.Result(f);
    }
}
