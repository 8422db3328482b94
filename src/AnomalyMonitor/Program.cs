using AnomalyMonitor.Cli;

var parse = CommandLine.Build().Parse(args);
return await parse.InvokeAsync(CommandLine.Invocation(parse)).ConfigureAwait(false);
