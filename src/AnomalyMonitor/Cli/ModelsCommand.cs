using AnomalyMonitor.State;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using AnomalyMonitor.Registry;
using Microsoft.Extensions.Options;

namespace AnomalyMonitor.Cli;

/// <summary>`models list` and `models rollback`: the registry's history, read from disk or from the running service.</summary>
internal static class ModelsCommand
{
    public static Command Create() => new("models", "List the model versions kept, and roll back to an earlier one.") { List(), Rollback() };

    private static Option<string?> ModelsDir()
    {
        var option = new Option<string?>("--models")
        {
            Description = "Read or change the registry in this directory (Models:Path) directly, instead of asking the service.",
        };
        // A mistyped path would otherwise list an empty registry and exit 0.
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } path && !Directory.Exists(path))
                result.AddError($"--models: there is no directory '{path}' (Models:Path in appsettings.json names the registry).");
        });
        return option;
    }

    private static Command List()
    {
        var dir = ModelsDir();
        var url = ServiceClient.Url();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var command = new Command("list", "List versions newest first: which is current, the gate's decision and its numbers.") { dir, url, json };
        command.SetAction(async (parse, ct) =>
        {
            JsonElement listing;
            if (parse.GetValue(dir) is { } path)
            {
                listing = Offline(path);
            }
            else
            {
                try
                {
                    using var client = new ServiceClient(parse.GetValue(url)!, null);
                    var (status, body) = await client.SendAsync(HttpMethod.Get, "api/models", ct).ConfigureAwait(false);
                    if (status != 200) throw new InvalidOperationException(ServiceClient.Problem(status, body));
                    listing = body;
                }
                catch (InvalidOperationException e)
                {
                    await Console.Error.WriteLineAsync($"error: {e.Message} (or read the directory with --models DIR)").ConfigureAwait(false);
                    return ExitCodes.Error;
                }
            }
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(listing, new JsonSerializerOptions { WriteIndented = true }));
            else PrintTable(listing);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Rollback()
    {
        var version = new Argument<int>("version") { Description = "The version to make current again (as `models list` shows it, without the v)." };
        var dir = ModelsDir();
        var url = ServiceClient.Url();
        var tokenFile = ServiceClient.TokenFile();
        var command = new Command("rollback", "Make an earlier version current again, with its own calibration. Through the running service (hot swap), or with --models on the directory while the service is stopped.")
            { version, dir, url, tokenFile };
        command.SetAction(async (parse, ct) =>
        {
            int v = parse.GetValue(version);
            if (parse.GetValue(dir) is { } path)
            {
                return await CliRunner.RunAsync(_ =>
                {
                    var registry = Registry(path);
                    if (!Directory.Exists(registry.PathOf(v))) throw new ArgumentException($"There is no version v{v} in {registry.Root}.");
                    registry.SetCurrent(v);
                    Console.WriteLine($"v{v} is current in {registry.Root}; a running service picks it up when restarted (or roll back through its API instead).");
                    return ExitCodes.Ok;
                }, ct).ConfigureAwait(false);
            }
            try
            {
                using var client = new ServiceClient(parse.GetValue(url)!, ServiceClient.ResolveToken(parse.GetValue(tokenFile)));
                var (status, body) = await client.SendAsync(HttpMethod.Post, $"api/models/{v}/rollback", ct).ConfigureAwait(false);
                if (status != 200) throw new InvalidOperationException(ServiceClient.Problem(status, body));
                Console.WriteLine(body.GetProperty("message").GetString());
                return ExitCodes.Ok;
            }
            catch (InvalidOperationException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Error;
            }
        });
        return command;
    }

    private static ModelRegistry Registry(string path) =>
        new(Options.Create(new ModelsOptions { Path = Path.GetFullPath(path) }), new PathResolver(Directory.GetCurrentDirectory()));

    /// <summary>The same shape GET /api/models returns, read from disk.</summary>
    private static JsonElement Offline(string path)
    {
        var registry = Registry(path);
        var versions = registry.List();
        return JsonSerializer.SerializeToElement(new
        {
            current = registry.CurrentVersion() ?? 0,
            versions = versions.Select(Web.ApiEndpoints.Describe),
        }, Web.ApiEndpoints.ModelsJson);
    }

    private static void PrintTable(JsonElement listing)
    {
        Console.WriteLine($"{"",1} {"version",-8} {"created (UTC)",-20} {"decision",-9} {"samples",8} {"error ratio",11} {"origin",-16} reason");
        foreach (var v in listing.GetProperty("versions").EnumerateArray())
        {
            string Get(JsonElement e, string name) => e.TryGetProperty(name, out var x) && x.ValueKind != JsonValueKind.Null ? x.ToString() : "-";
            var gate = v.TryGetProperty("gate", out var g) && g.ValueKind == JsonValueKind.Object ? g : default;
            var created = v.TryGetProperty("createdAt", out var c) && c.ValueKind == JsonValueKind.String
                ? c.GetDateTimeOffset().UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) : "-";
            var ratio = gate.ValueKind == JsonValueKind.Object && gate.TryGetProperty("ratio", out var r) && r.ValueKind == JsonValueKind.Number ? r.GetDouble().ToString("F3", CultureInfo.InvariantCulture) : "-";
            var reason = Get(v, "valid") == "False" ? Get(v, "problem") : gate.ValueKind == JsonValueKind.Object ? Get(gate, "reason") : "";
            Console.WriteLine($"{(Get(v, "current") == "True" ? "*" : " "),1} v{Get(v, "version"),-7} {created,-20} {Get(v, "decision"),-9} {Get(v, "samples"),8} {ratio,11} {Get(v, "origin"),-16} {reason}");
        }
    }
}
