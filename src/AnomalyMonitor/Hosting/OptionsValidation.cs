using AnomalyMonitor.Core.Imaging;
using AnomalyMonitor.Core.Models;
using AnomalyMonitor.Mqtt;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Hosting;

/// <summary>
/// Every section's checks in one place; each validator collects all of its failures so that a bad
/// appsettings.json is one clean, non-zero exit listing every problem (what systemd's journal shows).
/// </summary>
internal static class OptionsValidation
{
    public static ValidateOptionsResult Result(List<string> failures) =>
        failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);

    public static void Positive(List<string> f, string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero) f.Add($"{name} must be a positive time span (e.g. \"00:00:05\"), was {value}.");
    }

    public static void AtLeast(List<string> f, string name, double value, double min)
    {
        if (value < min) f.Add($"{name} must be at least {min}, was {value}.");
    }
}

internal sealed class ModelsOptionsValidator : IValidateOptions<ModelsOptions>
{
    public ValidateOptionsResult Validate(string? name, ModelsOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("Models:Path must name the model directory.");
        var d = (o.Device ?? "").Trim().ToLowerInvariant();
        if (d is not ("auto" or "cpu") && !System.Text.RegularExpressions.Regex.IsMatch(d, "^cuda(:[0-9]+)?$"))
            f.Add($"Models:Device must be auto, cpu, cuda or cuda:N, was '{o.Device}'.");
        if (o.Threads < 0) f.Add($"Models:Threads must be 0 (libtorch's default) or more, was {o.Threads}.");
        OptionsValidation.AtLeast(f, "Models:KeepVersions", o.KeepVersions, 1);
        return OptionsValidation.Result(f);
    }
}

internal sealed class IngestOptionsValidator : IValidateOptions<IngestOptions>
{
    public ValidateOptionsResult Validate(string? name, IngestOptions o)
    {
        var f = new List<string>();
        if (o.Folder.Enabled && string.IsNullOrWhiteSpace(o.Folder.Path)) f.Add("Ingest:Folder:Path must be set when the folder source is enabled.");
        OptionsValidation.Positive(f, "Ingest:Folder:RescanInterval", o.Folder.RescanInterval);
        if (o.Folder.StableFor < TimeSpan.Zero) f.Add($"Ingest:Folder:StableFor must not be negative, was {o.Folder.StableFor}.");
        OptionsValidation.AtLeast(f, "Ingest:Folder:MaxFileBytes", o.Folder.MaxFileBytes, 1);
        if (o.Mqtt.Enabled && o.Mqtt.Topics.Count == 0) f.Add("Ingest:Mqtt:Topics must hold at least one topic filter when the MQTT source is enabled.");
        foreach (var t in o.Mqtt.Topics.Where(t => string.IsNullOrWhiteSpace(t) || t.Contains('#', StringComparison.Ordinal) && !t.EndsWith('#')))
            f.Add($"Ingest:Mqtt:Topics: '{t}' is not a valid filter ('#' may only end a filter).");
        OptionsValidation.Positive(f, "Ingest:Mqtt:SessionExpiry", o.Mqtt.SessionExpiry);
        return OptionsValidation.Result(f);
    }
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
        OptionsValidation.AtLeast(f, "Mqtt:Embedded:MaxPendingMessages", o.Embedded.MaxPendingMessages, 1);
        if (!System.Net.IPAddress.TryParse(o.Embedded.Address, out _)) f.Add($"Mqtt:Embedded:Address must be an IP address, was '{o.Embedded.Address}'.");
        if (string.IsNullOrWhiteSpace(o.ClientId)) f.Add("Mqtt:ClientId must not be empty.");
        if (!string.IsNullOrEmpty(o.PasswordFile) && Path.IsPathRooted(o.PasswordFile) && !File.Exists(o.PasswordFile))
            f.Add($"Mqtt:PasswordFile '{o.PasswordFile}' does not exist.");
        OptionsValidation.Positive(f, "Mqtt:KeepAlive", o.KeepAlive);
        OptionsValidation.Positive(f, "Mqtt:ReconnectMin", o.ReconnectMin);
        if (o.ReconnectMax < o.ReconnectMin) f.Add("Mqtt:ReconnectMax must not be below Mqtt:ReconnectMin.");
        return OptionsValidation.Result(f);
    }
}

internal sealed class PipelineOptionsValidator : IValidateOptions<PipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, PipelineOptions o)
    {
        var f = new List<string>();
        OptionsValidation.AtLeast(f, "Pipeline:QueueCapacity", o.QueueCapacity, 1);
        OptionsValidation.AtLeast(f, "Pipeline:DecodeWorkers", o.DecodeWorkers, 1);
        OptionsValidation.AtLeast(f, "Pipeline:MaxBatchSize", o.MaxBatchSize, 1);
        if (o.MaxBatchWait < TimeSpan.Zero) f.Add($"Pipeline:MaxBatchWait must not be negative, was {o.MaxBatchWait}.");
        OptionsValidation.Positive(f, "Pipeline:RetryDelay", o.RetryDelay);
        if (o.RetryMaxDelay < o.RetryDelay) f.Add("Pipeline:RetryMaxDelay must not be below Pipeline:RetryDelay.");
        OptionsValidation.AtLeast(f, "Pipeline:MaxAttempts", o.MaxAttempts, 1);
        return OptionsValidation.Result(f);
    }
}

internal sealed class JudgeOptionsValidator : IValidateOptions<JudgeOptions>
{
    public ValidateOptionsResult Validate(string? name, JudgeOptions o)
    {
        var f = new List<string>();
        if (o.K <= 0) f.Add($"Judge:K must be positive, was {o.K}.");
        if (!string.IsNullOrWhiteSpace(o.Rule))
        {
            try { Core.Thresholds.ThresholdPolicy.Parse(o.Rule); }
            catch (FormatException e) { f.Add($"Judge:Rule: {e.Message}"); }
        }
        OptionsValidation.AtLeast(f, "Judge:Window", o.Window, 2);
        if (o.MinWindow < 2 || o.MinWindow > o.Window) f.Add($"Judge:MinWindow must be between 2 and Judge:Window ({o.Window}), was {o.MinWindow}.");
        if (o.Accept > o.K) f.Add($"Judge:Accept ({o.Accept}) must not exceed Judge:K ({o.K}): only items well inside the normal range may train the next model.");
        OptionsValidation.Positive(f, "Judge:SaveInterval", o.SaveInterval);
        if (o.Drift.Fraction is <= 0 or > 1) f.Add($"Judge:Drift:Fraction must be in (0, 1], was {o.Drift.Fraction}.");
        OptionsValidation.Positive(f, "Judge:Drift:Duration", o.Drift.Duration);
        OptionsValidation.AtLeast(f, "Judge:Drift:MinItems", o.Drift.MinItems, 1);
        return OptionsValidation.Result(f);
    }
}

internal sealed class AlertsOptionsValidator : IValidateOptions<AlertsOptions>
{
    public ValidateOptionsResult Validate(string? name, AlertsOptions o)
    {
        var f = new List<string>();
        foreach (var (key, topic) in new[] { ("Alerts:Topic", o.Topic), ("Alerts:StatusTopic", o.StatusTopic) })
            if (string.IsNullOrWhiteSpace(topic) || topic.IndexOfAny(['#', '+']) >= 0) f.Add($"{key} must be a topic name without wildcards, was '{topic}'.");
        if (o.Cooldown < TimeSpan.Zero) f.Add($"Alerts:Cooldown must not be negative, was {o.Cooldown}.");
        OptionsValidation.AtLeast(f, "Alerts:MaxPerMinute", o.MaxPerMinute, 1);
        OptionsValidation.Positive(f, "Alerts:RetryInterval", o.RetryInterval);
        return OptionsValidation.Result(f);
    }
}

internal sealed class StorageOptionsValidator : IValidateOptions<EvidenceOptions>, IValidateOptions<NormalStoreOptions>, IValidateOptions<ServiceOptions>, IValidateOptions<WebOptions>, IValidateOptions<BootstrapOptions>
{
    public ValidateOptionsResult Validate(string? name, EvidenceOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("Evidence:Path must be set.");
        OptionsValidation.AtLeast(f, "Evidence:MaxCount", o.MaxCount, 1);
        OptionsValidation.Positive(f, "Evidence:MaxAge", o.MaxAge);
        return OptionsValidation.Result(f);
    }

    public ValidateOptionsResult Validate(string? name, NormalStoreOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.Path)) f.Add("NormalStore:Path must be set.");
        OptionsValidation.AtLeast(f, "NormalStore:Capacity", o.Capacity, 1);
        return OptionsValidation.Result(f);
    }

    public ValidateOptionsResult Validate(string? name, ServiceOptions o)
    {
        var f = new List<string>();
        if (string.IsNullOrWhiteSpace(o.StateDirectory)) f.Add("Service:StateDirectory must be set.");
        OptionsValidation.Positive(f, "Service:ShutdownTimeout", o.ShutdownTimeout);
        return OptionsValidation.Result(f);
    }

    public ValidateOptionsResult Validate(string? name, WebOptions o)
    {
        var f = new List<string>();
        foreach (var url in (o.Urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            if (!Uri.TryCreate(url.Replace("*", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                f.Add($"Web:Urls: '{url}' is not an http(s) URL.");
        return OptionsValidation.Result(f);
    }

    public ValidateOptionsResult Validate(string? name, BootstrapOptions o)
    {
        var f = new List<string>();
        OptionsValidation.AtLeast(f, "Bootstrap:Samples", o.Samples, 2);
        OptionsValidation.AtLeast(f, "Bootstrap:Epochs", o.Epochs, 1);
        OptionsValidation.AtLeast(f, "Bootstrap:MinSteps", o.MinSteps, 0);
        if (!ModelSpec.Architectures.Contains(o.Architecture)) f.Add($"Bootstrap:Architecture must be one of {string.Join(", ", ModelSpec.Architectures)}, was '{o.Architecture}'.");
        if (o.Shape is not null)
        {
            try { ImageShape.Parse(o.Shape); }
            catch (Exception e) when (e is FormatException or ArgumentException) { f.Add($"Bootstrap:Shape: {e.Message}"); }
        }
        if (!string.IsNullOrWhiteSpace(o.Data) && !File.Exists(o.Data) && !Directory.Exists(o.Data) && Path.IsPathRooted(o.Data))
            f.Add($"Bootstrap:Data '{o.Data}' does not exist.");
        return OptionsValidation.Result(f);
    }
}

internal sealed class RetrainOptionsValidator : IValidateOptions<RetrainOptions>, IValidateOptions<ApiOptions>, IValidateOptions<FeedbackOptions>
{
    public ValidateOptionsResult Validate(string? name, RetrainOptions o)
    {
        var f = new List<string>();
        if (o.Enabled && !Quartz.CronExpression.TryParse(o.Schedule ?? "", out _))
            f.Add($"Retrain:Schedule '{o.Schedule}' is not a valid Quartz cron expression (seconds first, e.g. \"0 0 0/6 * * ?\").");
        OptionsValidation.AtLeast(f, "Retrain:MinNewSamples", o.MinNewSamples, 0);
        OptionsValidation.AtLeast(f, "Retrain:MinSamples", o.MinSamples, 10);
        if (o.QuarantineAge < TimeSpan.Zero) f.Add($"Retrain:QuarantineAge must not be negative, was {o.QuarantineAge}.");
        if (o.Holdout is <= 0 or >= 0.5) f.Add($"Retrain:Holdout must be in (0, 0.5), was {o.Holdout}.");
        OptionsValidation.AtLeast(f, "Retrain:Tolerance", o.Tolerance, 0);
        OptionsValidation.AtLeast(f, "Retrain:AurocTolerance", o.AurocTolerance, 0);
        OptionsValidation.AtLeast(f, "Retrain:MinConfirmedAnomalies", o.MinConfirmedAnomalies, 1);
        OptionsValidation.AtLeast(f, "Retrain:Threads", o.Threads, 1);
        OptionsValidation.AtLeast(f, "Retrain:Epochs", o.Epochs, 1);
        OptionsValidation.AtLeast(f, "Retrain:MinSteps", o.MinSteps, 0);
        OptionsValidation.AtLeast(f, "Retrain:Patience", o.Patience, 0);
        OptionsValidation.AtLeast(f, "Retrain:BatchSize", o.BatchSize, 1);
        return OptionsValidation.Result(f);
    }

    public ValidateOptionsResult Validate(string? name, ApiOptions o)
    {
        var f = new List<string>();
        if (o.Token is { } t && t.Trim().Length < 16) f.Add("Api:Token must be at least 16 characters; generate one with `openssl rand -hex 32`.");
        if (!string.IsNullOrEmpty(o.Token) && !string.IsNullOrEmpty(o.TokenFile)) f.Add("Set Api:Token or Api:TokenFile, not both.");
        return OptionsValidation.Result(f);
    }

    public ValidateOptionsResult Validate(string? name, FeedbackOptions o)
    {
        var f = new List<string>();
        if (!string.IsNullOrEmpty(o.Topic) && (o.Topic.Contains('#', StringComparison.Ordinal) || o.Topic.Contains('+', StringComparison.Ordinal)))
            f.Add($"Feedback:Topic must be a plain topic without wildcards, was '{o.Topic}'.");
        return OptionsValidation.Result(f);
    }
}
