using AnomalyMonitor.Pipeline;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace AnomalyMonitor.State;

/// <summary>
/// Runs a write that an acknowledgement depends on (an alert into the outbox, samples into the store)
/// until it succeeds: a full disk or a locked database degrades the service loudly instead of losing the
/// record or parking the item. Retries back off exponentially (Pipeline:RetryDelay up to RetryMaxDelay)
/// and end only when the write succeeds or the service stops (cancellation), so whoever waits on it holds
/// its items meanwhile: back-pressure reaches the sources, and nothing is acknowledged early.
/// </summary>
public sealed class DurableWrite
{
    private readonly StorageHealth _health;
    private readonly ResiliencePipeline _retry;

    public DurableWrite(StorageHealth health, IOptions<PipelineOptions> options, TimeProvider time)
    {
        _health = health;
        _retry = new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(IsStorageError),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = false,
                Delay = options.Value.RetryDelay,
                MaxDelay = options.Value.RetryMaxDelay,
                MaxRetryAttempts = int.MaxValue,
                OnRetry = args =>
                {
                    if (args.Outcome.Exception is { } e && args.Context.Properties.TryGetValue(Store, out var store)) _health.Failed(store, e);
                    return default;
                },
            })
            .Build();
    }

    private static readonly ResiliencePropertyKey<string> Store = new("store");

    /// <summary>Errors of the storage itself; anything else is a bug and is not retried.</summary>
    public static bool IsStorageError(Exception e) => e is IOException or SqliteException or UnauthorizedAccessException;

    /// <summary>
    /// Test hook, for machines where a test cannot mount a small filesystem to fill: called before each write
    /// with the store's name; an exception it returns is thrown as if the write had failed.
    /// </summary>
    internal Func<string, Exception?>? Fault { get; set; }

    public async ValueTask RunAsync(string store, Action write, CancellationToken cancellationToken)
    {
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(Store, store);
        try
        {
            await _retry.ExecuteAsync(static (ctx, state) =>
            {
                if (state.Self.Fault?.Invoke(state.Store) is { } fault) throw fault;
                state.Write();
                return ValueTask.CompletedTask;
            }, context, (Self: this, Store: store, Write: write)).ConfigureAwait(false);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
        _health.Recovered(store);
    }

    /// <summary>One attempt, for writes that are not on an item's path (the judge window): failure degrades, success recovers.</summary>
    public bool TryOnce(string store, Action write)
    {
        try
        {
            if (Fault?.Invoke(store) is { } fault) throw fault;
            write();
        }
        catch (Exception e) when (IsStorageError(e))
        {
            _health.Failed(store, e);
            return false;
        }
        _health.Recovered(store);
        return true;
    }
}
