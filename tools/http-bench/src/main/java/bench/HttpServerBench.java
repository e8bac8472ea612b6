package bench;

import com.sun.net.httpserver.HttpServer;
import io.helidon.webserver.WebServer;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One server-sent-event endpoint ({@code GET /sse?n=N&gap=MS}: N events, each carrying the server's clock, MS apart)
 * and one body endpoint ({@code POST /echo}, 1 MiB limit) on each candidate HTTP server, configured with the
 * timeouts it offers (10 s), then the same client against each: S concurrent streams on the loopback (the delay from
 * an event's writing to its reading, the streams that did not finish, the CPU time of the process), and probes of
 * what a bad client can do (a head that stops, a body that stops, a 64 KiB header, a 2 MiB body).
 *
 * <p>Usage: {@code HttpServerBench <jdk|jetty|netty|helidon> <streams> <events> <gapMillis>}; prints one JSON line.
 */
public final class HttpServerBench {
    static final int TIMEOUT_SECONDS = 10;
    static final int MAX_BODY = 1 << 20;

    interface Running extends AutoCloseable {
        int port();

        @Override
        void close() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        String kind = args[0];
        int streams = Integer.parseInt(args[1]);
        int events = Integer.parseInt(args[2]);
        int gap = Integer.parseInt(args[3]);
        try (Running server = switch (kind) {
            case "jdk" -> jdk();
            case "jetty" -> jetty();
            case "netty" -> netty();
            case "helidon" -> helidon();
            default -> throw new IllegalArgumentException(kind);
        }) {
            stream(server.port(), 8, 10, 1);  // warm-up
            var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            long cpu0 = os.getProcessCpuTime();
            long t0 = System.nanoTime();
            Result r = stream(server.port(), streams, events, gap);
            double wall = (System.nanoTime() - t0) / 1e9;
            double cpu = (os.getProcessCpuTime() - cpu0) / 1e9;
            long[] lags = r.lags.stream().mapToLong(Long::longValue).sorted().toArray();
            String probes = probes(server.port());
            System.out.printf("{\"server\": \"%s\", \"streams\": %d, \"events_each\": %d, \"gap_ms\": %d, \"completed\": %d, "
                            + "\"events\": %d, \"lag_p50_ms\": %.2f, \"lag_p99_ms\": %.2f, \"lag_max_ms\": %.2f, \"wall_s\": %.2f, "
                            + "\"cpu_s\": %.2f, %s}%n", kind, streams, events, gap, r.completed.get(), lags.length,
                    pct(lags, 0.5), pct(lags, 0.99), lags.length == 0 ? 0 : lags[lags.length - 1] / 1e6, wall, cpu, probes);
        }
        System.exit(0);
    }

    static double pct(long[] sorted, double q) {
        return sorted.length == 0 ? 0 : sorted[Math.min(sorted.length - 1, (int) (q * sorted.length))] / 1e6;
    }

    record Result(AtomicInteger completed, ConcurrentLinkedQueue<Long> lags) {
    }

    /** {@code streams} clients at once, each on a virtual thread with its own connection. */
    static Result stream(int port, int streams, int events, int gap) throws InterruptedException {
        Result result = new Result(new AtomicInteger(), new ConcurrentLinkedQueue<>());
        try (var threads = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < streams; i++) {
                threads.submit(() -> {
                    try (Socket socket = new Socket("127.0.0.1", port)) {
                        socket.setSoTimeout(60_000);
                        socket.getOutputStream().write(("GET /sse?n=" + events + "&gap=" + gap + " HTTP/1.1\r\nHost: localhost\r\n"
                                + "Connection: close\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                        BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.US_ASCII));
                        int seen = 0;
                        for (String line = in.readLine(); line != null; line = in.readLine()) {
                            if (line.startsWith("data: ")) {
                                result.lags.add(System.nanoTime() - Long.parseLong(line.substring(6).strip()));
                                if (++seen == events) {
                                    result.completed.incrementAndGet();
                                    break;
                                }
                            }
                        }
                    } catch (IOException e) {
                        // counted as not completed
                    }
                    return null;
                });
            }
        }
        return result;
    }

    /** What each bad client met: when the server closed (seconds, or "open" after 15 s), or the status it answered. */
    static String probes(int port) throws Exception {
        String head = probe(port, "POST /echo HTTP/1.1\r\nHost: loc");
        String body = probe(port, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"a\":");
        String bigHeader = probe(port, "GET /sse?n=1&gap=0 HTTP/1.1\r\nHost: localhost\r\nX-Big: " + "a".repeat(64 << 10) + "\r\n\r\n");
        String bigBody = probe(port, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: " + (2 << 20) + "\r\n\r\n"
                + "x".repeat(2 << 20));
        return "\"stalled_head\": \"" + head + "\", \"stalled_body\": \"" + body + "\", \"header_64k\": \"" + bigHeader
                + "\", \"body_2m\": \"" + bigBody + "\"";
    }

    static String probe(int port, String send) throws IOException {
        long start = System.nanoTime();
        try (Socket socket = new Socket("127.0.0.1", port)) {
            socket.setSoTimeout(15_000);
            try {
                socket.getOutputStream().write(send.getBytes(StandardCharsets.US_ASCII));
            } catch (IOException e) {
                return "reset while sending";
            }
            InputStream in = socket.getInputStream();
            StringBuilder status = new StringBuilder();
            try {
                int b;
                while ((b = in.read()) >= 0 && status.length() < 12) {
                    status.append((char) b);
                }
                String line = status.toString();
                String seconds = String.format("%.1f s", (System.nanoTime() - start) / 1e9);
                return line.startsWith("HTTP/") ? line.substring(9).strip() + " after " + seconds : "closed after " + seconds;
            } catch (SocketTimeoutException e) {
                return "open after 15 s";
            } catch (IOException e) {
                return String.format("reset after %.1f s", (System.nanoTime() - start) / 1e9);
            }
        }
    }

    static int query(String query, String name) {
        for (String part : query.split("&")) {
            if (part.startsWith(name + "=")) {
                return Integer.parseInt(part.substring(name.length() + 1));
            }
        }
        return 0;
    }

    static byte[] event() {
        return ("data: " + System.nanoTime() + "\n\n").getBytes(StandardCharsets.US_ASCII);
    }

    static void pause(int millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // --- the JDK's com.sun.net.httpserver, a virtual thread per exchange; its only timeouts are system properties ---
    static Running jdk() throws IOException {
        System.setProperty("sun.net.httpserver.maxReqTime", String.valueOf(TIMEOUT_SECONDS));
        System.setProperty("sun.net.httpserver.idleInterval", String.valueOf(TIMEOUT_SECONDS));
        HttpServer http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 1024);
        http.createContext("/sse", ex -> {
            int n = query(ex.getRequestURI().getQuery(), "n");
            int gap = query(ex.getRequestURI().getQuery(), "gap");
            ex.getResponseHeaders().set("Content-Type", "text/event-stream");
            ex.sendResponseHeaders(200, 0);
            try (OutputStream out = ex.getResponseBody()) {
                for (int i = 0; i < n; i++) {
                    out.write(event());
                    out.flush();
                    pause(gap);
                }
            }
        });
        http.createContext("/echo", ex -> {
            byte[] body = ex.getRequestBody().readNBytes(MAX_BODY + 1);
            int status = body.length > MAX_BODY ? 413 : 200;
            ex.sendResponseHeaders(status, -1);
            ex.close();
        });
        http.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        http.start();
        return new Running() {
            public int port() {
                return http.getAddress().getPort();
            }

            public void close() {
                http.stop(0);
            }
        };
    }

    // --- Jetty 12 core, blocking handlers on virtual threads; idle timeout, a deadline on the body ---
    static Running jetty() throws Exception {
        QueuedThreadPool threads = new QueuedThreadPool();
        threads.setVirtualThreadsExecutor(Executors.newVirtualThreadPerTaskExecutor());
        Server server = new Server(threads);
        HttpConfiguration config = new HttpConfiguration();
        config.setRequestHeaderSize(16 << 10);
        ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(config));
        connector.setHost("127.0.0.1");
        connector.setAcceptQueueSize(1024);
        connector.setIdleTimeout(TIMEOUT_SECONDS * 1000L);
        server.addConnector(connector);
        server.setHandler(new Handler.Abstract() {
            @Override
            public boolean handle(Request request, Response response, Callback callback) throws Exception {
                String path = request.getHttpURI().getPath();
                if (path.equals("/sse")) {
                    int n = query(request.getHttpURI().getQuery(), "n");
                    int gap = query(request.getHttpURI().getQuery(), "gap");
                    response.getHeaders().put("Content-Type", "text/event-stream");
                    for (int i = 0; i < n; i++) {
                        try (Blocker.Callback written = Blocker.callback()) {
                            response.write(i == n - 1, ByteBuffer.wrap(event()), written);
                            written.block();
                        }
                        pause(gap);
                    }
                    callback.succeeded();
                    return true;
                }
                try {
                    Content.Source.asByteArrayAsync(request, MAX_BODY).get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
                    response.setStatus(200);
                } catch (java.util.concurrent.TimeoutException e) {
                    response.setStatus(408);
                } catch (java.util.concurrent.ExecutionException e) {
                    response.setStatus(e.getCause() instanceof java.util.concurrent.TimeoutException ? 408 : 413);
                }
                response.getHeaders().put("Connection", "close");
                response.write(true, ByteBuffer.allocate(0), callback);
                return true;
            }
        });
        server.start();
        return new Running() {
            public int port() {
                return connector.getLocalPort();
            }

            public void close() throws Exception {
                server.stop();
            }
        };
    }

    // --- Netty 4.2, the event loops; events scheduled on the channel's loop; idle (read and write) timeout ---
    static Running netty() throws InterruptedException {
        EventLoopGroup boss = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        EventLoopGroup workers = new MultiThreadIoEventLoopGroup(NioIoHandler.newFactory());
        Channel channel = new ServerBootstrap().group(boss, workers).channel(NioServerSocketChannel.class)
                .option(io.netty.channel.ChannelOption.SO_BACKLOG, 1024)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(new IdleStateHandler(0, 0, TIMEOUT_SECONDS) {
                            @Override
                            protected void channelIdle(ChannelHandlerContext ctx, IdleStateEvent evt) {
                                ctx.close();
                            }
                        });
                        ch.pipeline().addLast(new HttpServerCodec(4096, 16 << 10, 8192));
                        ch.pipeline().addLast(new HttpObjectAggregator(MAX_BODY));
                        ch.pipeline().addLast(new SimpleChannelInboundHandler<FullHttpRequest>() {
                            @Override
                            protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
                                if (!request.decoderResult().isSuccess()) {
                                    ctx.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.BAD_REQUEST))
                                            .addListener(ChannelFutureListener.CLOSE);
                                    return;
                                }
                                QueryStringDecoder uri = new QueryStringDecoder(request.uri());
                                if (!uri.path().equals("/sse")) {
                                    ctx.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK))
                                            .addListener(ChannelFutureListener.CLOSE);
                                    return;
                                }
                                int n = Integer.parseInt(uri.parameters().get("n").getFirst());
                                int gap = Integer.parseInt(uri.parameters().get("gap").getFirst());
                                DefaultHttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
                                head.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/event-stream");
                                head.headers().set(HttpHeaderNames.TRANSFER_ENCODING, "chunked");
                                ctx.writeAndFlush(head);
                                sendEvents(ctx, n, gap);
                            }

                            private void sendEvents(ChannelHandlerContext ctx, int left, int gap) {
                                if (left == 0 || !ctx.channel().isActive()) {
                                    ctx.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT).addListener(ChannelFutureListener.CLOSE);
                                    return;
                                }
                                ctx.writeAndFlush(new DefaultHttpContent(Unpooled.wrappedBuffer(event())));
                                ctx.executor().schedule(() -> sendEvents(ctx, left - 1, gap), gap, TimeUnit.MILLISECONDS);
                            }
                        });
                    }
                }).bind("127.0.0.1", 0).sync().channel();
        return new Running() {
            public int port() {
                return ((InetSocketAddress) channel.localAddress()).getPort();
            }

            public void close() {
                channel.close();
                boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
                workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            }
        };
    }

    // --- Helidon SE 4 (Níma), a virtual thread per request; idle timeout, payload and header limits ---
    static Running helidon() {
        WebServer server = WebServer.builder()
                .host("127.0.0.1").port(0)
                .backlog(1024)
                .maxPayloadSize(MAX_BODY)
                .idleConnectionTimeout(Duration.ofSeconds(TIMEOUT_SECONDS))
                .idleConnectionPeriod(Duration.ofSeconds(1))
                .connectionOptions(o -> o.readTimeout(Duration.ofSeconds(TIMEOUT_SECONDS)))
                .routing(r -> r.get("/sse", (req, res) -> {
                    int n = Integer.parseInt(req.query().get("n"));
                    int gap = Integer.parseInt(req.query().get("gap"));
                    res.header("Content-Type", "text/event-stream");
                    try (OutputStream out = res.outputStream()) {
                        for (int i = 0; i < n; i++) {
                            out.write(event());
                            out.flush();
                            pause(gap);
                        }
                    }
                }).post("/echo", (req, res) -> {
                    req.content().as(byte[].class);
                    res.header("Connection", "close").send();
                }))
                .build().start();
        return new Running() {
            public int port() {
                return server.port();
            }

            public void close() {
                server.stop();
            }
        };
    }
}
