using System.Net;
using System.Net.Sockets;

namespace AnomalyMonitor.Tests.Support;

public static class Ports
{
    // Ports come from below the kernel's ephemeral range. A port the kernel hands out for bind(0) is one it
    // also hands out as the local end of any outgoing connection: between the probe closing and a broker or
    // service binding it (or while a broker is down for a restart test), another test's client could take
    // it, and the bind fails now and then. Nothing picks local ports below the range on its own, and the
    // counter keeps parallel test classes in this process off each other's ports.
    private const int First = 20000;
    private static readonly int Span = Math.Max(1000, EphemeralLow() - First);
    private static int _next = Environment.ProcessId * 211 % Span;

    public static int Free()
    {
        for (int tries = 0; tries < Span; tries++)
        {
            int port = First + (int)((uint)Interlocked.Increment(ref _next) % (uint)Span);
            if (Bindable(port)) return port;
        }
        throw new InvalidOperationException($"no free loopback port in {First}..{First + Span}");
    }

    /// <summary>Another process (a second test run, a real service) may hold a port in our range: probe it.</summary>
    private static bool Bindable(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int EphemeralLow()
    {
        const string range = "/proc/sys/net/ipv4/ip_local_port_range";
        try
        {
            var low = File.ReadAllText(range).Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0];
            return int.Parse(low, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32768; // the Linux default, and above the registered ports most machines listen on
        }
    }

    public static async Task WaitOpenAsync(int port, TimeSpan timeout)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (clock.Elapsed < timeout)
            {
                await Task.Delay(50);
            }
        }
    }
}
