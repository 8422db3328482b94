using System.CommandLine;
using System.Text.Json;

namespace AnomalyMonitor.Cli;

/// <summary>`retrain --now`: asks the running service to retrain at once (POST /api/retrain), and by default waits for the gate's decision.</summary>
internal static class RetrainCommand
{
    public static Command Create()
    {
        var now = new Option<bool>("--now") { Description = "Retrain now, even with fewer than Retrain:MinNewSamples new samples.", Required = true };
        var noWait = new Option<bool>("--no-wait") { Description = "Return once the run has started instead of waiting for its outcome." };
        var url = ServiceClient.Url();
        var tokenFile = ServiceClient.TokenFile();
        var command = new Command("retrain", "Ask the running service to retrain its model on the accepted normals, and show the gate's decision.") { now, noWait, url, tokenFile };
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                using var client = new ServiceClient(parse.GetValue(url)!, ServiceClient.ResolveToken(parse.GetValue(tokenFile)));
                var wait = !parse.GetValue(noWait);
                var (status, body) = await client.SendAsync(HttpMethod.Post, $"api/retrain?wait={(wait ? "true" : "false")}", ct).ConfigureAwait(false);
                if (status is < 200 or > 299)
                {
                    await Console.Error.WriteLineAsync($"error: {ServiceClient.Problem(status, body)}").ConfigureAwait(false);
                    return ExitCodes.Error;
                }
                if (!wait)
                {
                    Console.WriteLine(body.GetProperty("message").GetString());
                    return ExitCodes.Ok;
                }
                Print(body);
                var result = body.GetProperty("result").GetString();
                return result is "failed" or "cancelled" ? ExitCodes.Error : ExitCodes.Ok;
            }
            catch (InvalidOperationException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Error;
            }
        });
        return command;
    }

    internal static void Print(JsonElement outcome)
    {
        string Get(string name) => outcome.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v.ToString() : "-";
        Console.WriteLine($"result:   {Get("result")}");
        Console.WriteLine($"reason:   {Get("reason")}");
        Console.WriteLine($"version:  {Get("version")} (parent {Get("parentVersion")})");
        var seconds = outcome.TryGetProperty("seconds", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetDouble().ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "-";
        Console.WriteLine($"samples:  {Get("samples")} trained, {seconds} s");
        if (outcome.TryGetProperty("gate", out var gate) && gate.ValueKind == JsonValueKind.Object)
        {
            string G(string name, string format) => gate.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number
                ? v.GetDouble().ToString(format, System.Globalization.CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"gate:     held-out mean error {G("candidateMeanError", "G4")} (candidate) vs {G("currentMeanError", "G4")} (current), ratio {G("ratio", "F3")}, {G("holdout", "F0")} held out");
            Console.WriteLine($"          AUROC on {G("confirmedAnomalies", "F0")} confirmed anomalies: {G("candidateAuroc", "F4")} (candidate) vs {G("currentAuroc", "F4")} (current)");
        }
    }
}
