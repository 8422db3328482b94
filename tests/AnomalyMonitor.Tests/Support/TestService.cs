using AnomalyMonitor.Hosting;
using AnomalyMonitor.State;
using AnomalyMonitor.Pipeline;
using AnomalyMonitor.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace AnomalyMonitor.Tests.Support;

/// <summary>The real service, composed exactly as `anomaly-monitor run` composes it, in this process, on free ports.</summary>
public sealed class TestService : IAsyncDisposable
{
    private TestService(WebApplication app, string root)
    {
        App = app;
        Root = root;
    }

    public WebApplication App { get; }
    public string Root { get; }
    public string BaseUrl => App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    public MonitorMetrics Metrics => App.Services.GetRequiredService<MonitorMetrics>();
    public PipelineService Pipeline => App.Services.GetRequiredService<PipelineService>();
    public ModelHolder Holder => App.Services.GetRequiredService<ModelHolder>();

    /// <summary>Evidence is written after the alert and the acknowledgement: wait for the writer before reading it.</summary>
    public Task EvidenceWrittenAsync() =>
        Wait.UntilAsync(() => App.Services.GetRequiredService<AnomalyMonitor.Evidence.EvidenceStore>().Queued == 0, "the evidence written");
    public string Inbox => Path.Combine(Root, "inbox");
    public AnomalyMonitor.Samples.NormalSampleStore Store => App.Services.GetRequiredService<AnomalyMonitor.Samples.NormalSampleStore>();
    public AnomalyMonitor.Retraining.Retrainer Retrainer => App.Services.GetRequiredService<AnomalyMonitor.Retraining.Retrainer>();
    public AnomalyMonitor.Registry.ModelRegistry Registry => App.Services.GetRequiredService<AnomalyMonitor.Registry.ModelRegistry>();

    /// <summary>The API token the service generated in its state directory.</summary>
    public string Token => File.ReadAllText(Path.Combine(Root, "state", "api-token")).Trim();

    /// <summary>An HTTP client for the service, with the API token unless <paramref name="token"/> says otherwise ("" for none).</summary>
    public HttpClient Http(string? token = null)
    {
        var http = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        token ??= Token;
        if (token.Length > 0) http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    /// <summary>The settings every test service starts from (in-process here, or as a child process in ServiceProcess); paths are relative to its root.</summary>
    public static Dictionary<string, string?> Defaults() => new()
    {
            ["Models:Path"] = "models",
            ["Service:StateDirectory"] = "state",
            ["Service:ShutdownTimeout"] = "00:00:08",
            ["Evidence:Path"] = "evidence",
            ["NormalStore:Path"] = "state/normals.db",
            ["Ingest:Folder:Path"] = "inbox",
            ["Ingest:Folder:StableFor"] = "00:00:00.150",
            ["Ingest:Folder:RescanInterval"] = "00:00:01",
            ["Ingest:Mqtt:Enabled"] = "false",
            ["Web:Urls"] = "http://127.0.0.1:0",
            // Each service gets its own embedded-broker port: test classes run in parallel, and 1883 is shared.
            ["Mqtt:Embedded:Port"] = Ports.Free().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mqtt:ReconnectMin"] = "00:00:00.200",
            ["Mqtt:ReconnectMax"] = "00:00:01",
            ["Alerts:RetryInterval"] = "00:00:00.200",
            ["Judge:K"] = "4",
            // The guard refuses blocks by their statistics; plumbing tests need every vetted normal learned and stored.
            // (Its statistics are tested on their own in RollingJudgeTests.)
            ["Judge:Guard"] = "0",
            // Quick training in plumbing tests; the step budget has tests of its own.
            ["Retrain:MinSteps"] = "0",
            ["Bootstrap:MinSteps"] = "0",
            // Plumbing tests learn the worksheet's detector, whose margins on the vetted images are known.
            ["Bootstrap:Latent"] = "16",
            ["Bootstrap:Score"] = "reconstruction",
            ["Bootstrap:Augment"] = "none",
            ["Judge:SaveInterval"] = "00:00:01",
            ["Logging:LogLevel:Default"] = "Warning",
    };

    /// <summary>A service whose paths all lie under <paramref name="root"/>; <paramref name="settings"/> add to or override <see cref="Defaults"/>.</summary>
    /// <param name="beforeStart">Runs between the build and the start: where a test sets a hook that start-up itself meets.</param>
    public static async Task<TestService> StartAsync(string root, IDictionary<string, string?> settings, Action<WebApplicationBuilder>? configure = null,
        Action<WebApplication>? beforeStart = null)
    {
        var all = Defaults();
        foreach (var (k, v) in settings) all[k] = v;
        var app = ServiceHost.Build(overrides: all, paths: new PathResolver(root), configure: configure);
        beforeStart?.Invoke(app);
        await app.StartAsync();
        return new TestService(app, root);
    }

    /// <summary>The test model judging, with a <see cref="RecordingSource"/> to submit items through <see cref="Intake"/> and hear them settle.</summary>
    public static async Task<TestService> StartJudgingAsync(string root, IDictionary<string, string?> settings, Action<WebApplicationBuilder>? configure = null)
    {
        TestModel.CopyTo(Path.Combine(root, "models"));
        var service = await StartAsync(root, settings, builder =>
        {
            builder.Services.AddIngestSource<RecordingSource>(hosted: false);
            configure?.Invoke(builder);
        });
        await Wait.UntilAsync(() => service.Holder.IsJudging, "the model loaded");
        return service;
    }

    public RecordingSource Recording => App.Services.GetRequiredService<RecordingSource>();
    public AnomalyMonitor.Ingest.Intake Intake => App.Services.GetRequiredService<AnomalyMonitor.Ingest.Intake>();

    /// <summary>Items judged so far by outcome, read from the service's own counters.</summary>
    public double Count(string outcome, string? source = null) =>
        Metrics.Items.GetAllLabelValues().Where(l => l[1] == outcome && (source is null || l[0] == source)).Sum(l => Metrics.Items.WithLabels(l).Value);

    public async Task StopAsync() => await App.StopAsync();

    public async ValueTask DisposeAsync()
    {
        try { await App.StopAsync(); } catch (ObjectDisposedException) { }
        await App.DisposeAsync();
    }
}
