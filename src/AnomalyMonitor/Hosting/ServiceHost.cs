using AnomalyMonitor.State;
using AnomalyMonitor.Web;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Hosting;

/// <summary>Builds the service: configuration layers, systemd integration, the areas, the web endpoints.</summary>
public static class ServiceHost
{
    public const string EnvironmentPrefix = "ANOMALYMONITOR__";

    /// <param name="configFile">--config: a JSON file whose values override appsettings.json and the environment.</param>
    /// <param name="overrides">Last layer (tests).</param>
    /// <param name="configure">Last say over the builder (tests add a log capture).</param>
    /// <param name="time">The clock for everything that schedules or stamps (tests pass a FakeTimeProvider).</param>
    public static WebApplication Build(string? configFile = null, IEnumerable<KeyValuePair<string, string?>>? overrides = null, PathResolver? paths = null,
        Action<WebApplicationBuilder>? configure = null, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, Args = [] });
        var config = builder.Configuration;
        config.Sources.Clear();
        config.AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: true, reloadOnChange: false);
        config.AddEnvironmentVariables(EnvironmentPrefix);
        if (configFile is not null) config.AddJsonFile(Path.GetFullPath(configFile), optional: false, reloadOnChange: false);
        if (overrides is not null) config.AddInMemoryCollection(overrides);

        builder.Host.UseSystemd();
        builder.WebHost.UseUrls((config["Web:Urls"] is { Length: > 0 } urls ? urls : new WebOptions().Urls).Split(';', StringSplitOptions.RemoveEmptyEntries));
        builder.Services.Configure<HostOptions>(o =>
        {
            o.ShutdownTimeout = config.GetSection(ServiceOptions.Section).Get<ServiceOptions>()?.ShutdownTimeout ?? new ServiceOptions().ShutdownTimeout;
            // One failing background loop is logged by that loop; it must not take the whole service down.
            o.BackgroundServiceExceptionBehavior = BackgroundServiceExceptionBehavior.Ignore;
        });
        builder.Services
            .AddMonitorOptions(config)
            .AddMonitorCore(paths ?? PathResolver.FromEnvironment(), time)
            .AddMonitorServices(config, time);

        configure?.Invoke(builder);
        var app = builder.Build();
        // Before anything resolves an option: one pass over every section, so all problems are listed together.
        app.Services.GetService<IStartupValidator>()?.Validate();
        app.Services.GetRequiredService<ApiToken>().Initialize();
        app.MapMonitorEndpoints();
        app.MapApiEndpoints();
        app.MapPage();
        return app;
    }

    /// <summary>Lists every configuration problem, one per line, from a failed start.</summary>
    public static IReadOnlyList<string> ConfigurationProblems(Exception e) => e switch
    {
        OptionsValidationException v => [.. v.Failures],
        AggregateException a when a.InnerExceptions.All(i => i is OptionsValidationException) =>
            [.. a.InnerExceptions.Cast<OptionsValidationException>().SelectMany(v => v.Failures)],
        _ => [],
    };
}
