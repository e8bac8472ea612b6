package dev.ember.server;

import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.io.AbstractEndPoint;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.BufferUtil;
import org.eclipse.jetty.util.Callback;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One HTTP request and its response, as the endpoints see them: Jetty's request, response and callback behind
 * blocking calls, made on the virtual thread that handles the request. Reading the body has a size limit and a
 * deadline for the whole body; a write that the client does not take blocks until the connection's idle timeout
 * fails it.
 */
final class Exchange {
    private static final long MAX_DISCARDED_BYTES = 64L << 20;

    private final Request request;
    private final Response response;
    private final Callback callback;
    private boolean completed;
    private boolean bodyRead;
    private DisconnectWatch watch;

    Exchange(Request request, Response response, Callback callback) {
        this.request = request;
        this.response = response;
        this.callback = callback;
    }

    String method() {
        return request.getMethod();
    }

    String path() {
        return request.getHttpURI().getPath();
    }

    /** A request header, or null. */
    String header(String name) {
        return request.getHeaders().get(name);
    }

    void setHeader(String name, String value) {
        response.getHeaders().put(name, value);
    }

    boolean isCommitted() {
        return response.isCommitted();
    }

    /**
     * The whole request body: at most {@code maxBytes} (a 413 beyond, told by Content-Length before anything is read
     * when the client declares it), all of it within {@code timeout} (a 408 otherwise: a client that stops sending, or
     * whose Content-Length is more than it sends).
     */
    byte[] body(int maxBytes, Duration timeout) {
        bodyRead = true;
        long declared = request.getLength();
        long deadline = System.nanoTime() + timeout.toNanos();
        if (declared > maxBytes) {
            discardRest(declared, deadline);
            throw tooLarge(declared + " bytes", maxBytes);
        }
        CompletableFuture<byte[]> read = Content.Source.asByteArrayAsync(request, maxBytes);
        try {
            byte[] bytes = read.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
            watch = DisconnectWatch.start(request);
            return bytes;
        } catch (TimeoutException e) {
            read.cancel(true);
            closeAfterResponse();
            throw new ApiException(408, "invalid_request_error", null, "request_timeout",
                    "the request body did not arrive within " + timeout.toMillis() + " ms (" + Request.getContentBytesRead(request)
                            + " of " + (declared < 0 ? "an unknown number of" : String.valueOf(declared)) + " bytes came)");
        } catch (ExecutionException e) {
            closeAfterResponse();
            if (Request.getContentBytesRead(request) > maxBytes || e.getCause() instanceof IllegalArgumentException) {
                discardRest(declared, deadline);
                throw tooLarge("more than " + maxBytes + " bytes", maxBytes);
            }
            throw new ApiException(400, "invalid_request_error", null, null, "the request body could not be read: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ApiException(503, "service_unavailable", null, null, "interrupted while reading the request");
        }
    }

    /**
     * Reads and drops what is left of a body refused as too large (up to {@link #MAX_DISCARDED_BYTES}, until the body's
     * deadline), so that a client still sending gets the answer rather than a reset connection.
     */
    private void discardRest(long declared, long deadline) {
        closeAfterResponse();
        if (declared > MAX_DISCARDED_BYTES) {
            return;
        }
        Callback.Completable drained = new Callback.Completable();
        Content.Source.consumeAll(request, drained);
        try {
            drained.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException | ExecutionException e) {
            // the rest did not come in time, or the client went away: the answer goes out all the same, then the close
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static ApiException tooLarge(String size, int maxBytes) {
        return new ApiException(413, "invalid_request_error", null, "request_too_large",
                "the request body (" + size + ") is over the limit of " + maxBytes + " bytes");
    }

    /** Whether the request carries a body that nothing has read. */
    private boolean hasUnreadBody() {
        return !bodyRead && (request.getLength() > 0 || request.getHeaders().contains(HttpHeader.TRANSFER_ENCODING));
    }

    /** The connection ends after this response: what is left of the request cannot be trusted or is not worth reading. */
    private void closeAfterResponse() {
        response.getHeaders().put(HttpHeader.CONNECTION, "close");
    }

    /**
     * Sends a whole response and ends the exchange. An answer given before the request's body was read (a 401, 404 or
     * 405) closes the connection: the server drops the rest of the body, and a body still arriving would otherwise have
     * the connection closed under a client that reuses it.
     */
    void send(int status, String contentType, byte[] body) throws IOException {
        stopWatching();
        if (hasUnreadBody()) {
            closeAfterResponse();
        }
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
        write(true, body);
        complete();
    }

    void sendJson(int status, byte[] body) throws IOException {
        send(status, "application/json", body);
    }

    /** Commits a 200 with a server-sent-event stream; {@link #sendEvent} follows. */
    void startEventStream() {
        stopWatching();
        response.setStatus(200);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "text/event-stream; charset=utf-8");
        response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-cache");
    }

    /** Writes {@code data: <payload>\n\n} and flushes it to the client. */
    void sendEvent(byte[] payload) throws IOException {
        byte[] event = new byte[DATA.length + payload.length + END_OF_EVENT.length];
        System.arraycopy(DATA, 0, event, 0, DATA.length);
        System.arraycopy(payload, 0, event, DATA.length, payload.length);
        System.arraycopy(END_OF_EVENT, 0, event, DATA.length + payload.length, END_OF_EVENT.length);
        write(false, event);
    }

    /** Writes {@code event: <name>\ndata: <payload>\n\n} and flushes it: an event that names its type. */
    void sendEvent(String name, byte[] payload) throws IOException {
        byte[] line = ("event: " + name + "\ndata: ").getBytes(StandardCharsets.UTF_8);
        byte[] event = new byte[line.length + payload.length + END_OF_EVENT.length];
        System.arraycopy(line, 0, event, 0, line.length);
        System.arraycopy(payload, 0, event, line.length, payload.length);
        System.arraycopy(END_OF_EVENT, 0, event, line.length + payload.length, END_OF_EVENT.length);
        write(false, event);
    }

    /** Ends an event stream without a last event. */
    void endEventStreamQuietly() throws IOException {
        write(true, new byte[0]);
        complete();
    }

    /** Ends an event stream with {@code data: [DONE]}. */
    void endEventStream() throws IOException {
        sendEvent(DONE);
        write(true, new byte[0]);
        complete();
    }

    private void write(boolean last, byte[] bytes) throws IOException {
        try (Blocker.Callback written = Blocker.callback()) {
            response.write(last, ByteBuffer.wrap(bytes), written);
            written.block();
        }
    }

    /**
     * Runs {@code action} (at once if it has happened) when the client closes its connection before the response
     * starts. Over HTTP/1 Jetty reads nothing while a handler runs, so a client that gives up on a long answer would
     * otherwise go unnoticed until the answer is written; an HTTP/2 client's reset fails the exchange's writes instead.
     */
    void onClientGone(Runnable action) {
        if (watch != null) {
            watch.onGone(action);
        }
    }

    private void stopWatching() {
        if (watch != null && watch.stop()) {
            closeAfterResponse();
        }
        watch = null;
    }

    /** Ends the exchange; after an error, the connection is closed. Idempotent. */
    void complete() {
        stopWatching();
        if (!completed) {
            completed = true;
            callback.succeeded();
        }
    }

    void fail(Throwable cause) {
        stopWatching();
        if (!completed) {
            completed = true;
            callback.failed(cause);
        }
    }

    /**
     * Read interest in an HTTP/1 connection whose request has been read, held while the handler works: readable means
     * the client closed (end of input), or sent bytes of another request before this one's answer (pipelining, which
     * the watch has to read and so drops: the connection then closes after this response). Withdrawn before the
     * response is written, so that Jetty can ask for the next request's bytes itself.
     */
    private static final class DisconnectWatch implements Callback {
        private static final Throwable WITHDRAWN = new Throwable("the response started", null, false, false) {
        };

        private final AbstractEndPoint endPoint;
        private final List<Runnable> actions = new CopyOnWriteArrayList<>();
        private volatile boolean gone;
        private volatile boolean dropped;
        private boolean registered;  // guarded by this
        private boolean stopped;     // guarded by this

        private DisconnectWatch(AbstractEndPoint endPoint) {
            this.endPoint = endPoint;
        }

        /** A watch over the request's connection, or null where there is none to keep (HTTP/2, or Jetty is reading). */
        static DisconnectWatch start(Request request) {
            HttpVersion version = request.getConnectionMetaData().getHttpVersion();
            if ((version != HttpVersion.HTTP_1_1 && version != HttpVersion.HTTP_1_0)
                    || !(request.getConnectionMetaData().getConnection().getEndPoint() instanceof AbstractEndPoint endPoint)) {
                return null;
            }
            DisconnectWatch watch = new DisconnectWatch(endPoint);
            return watch.register() ? watch : null;
        }

        void onGone(Runnable action) {
            actions.add(action);
            if (gone) {
                runActions();
            }
        }

        /** Ends the watch; true if it read bytes of another request, which are lost. */
        synchronized boolean stop() {
            stopped = true;
            if (registered) {
                registered = false;
                endPoint.getFillInterest().onFail(WITHDRAWN);
            }
            return dropped;
        }

        private synchronized boolean register() {
            registered = !stopped && endPoint.tryFillInterested(this);
            return registered;
        }

        @Override
        public void succeeded() {
            int read;
            // Under the lock, so that a stop, and Jetty's reads after the answer, never overlap this read.
            synchronized (this) {
                registered = false;
                if (stopped) {
                    return;
                }
                try {
                    read = endPoint.fill(BufferUtil.allocate(4096));
                } catch (IOException e) {
                    read = -1;
                }
                if (read > 0) {
                    dropped = true;
                } else if (read == 0) {
                    register();
                }
            }
            if (read < 0) {
                gone();
            }
        }

        @Override
        public void failed(Throwable cause) {
            synchronized (this) {
                registered = false;
                if (cause == WITHDRAWN || stopped) {
                    return;
                }
                if (cause instanceof TimeoutException) {  // the connection's idle timeout: an answer slow to come, not a client gone
                    register();
                    return;
                }
            }
            gone();
        }

        private void gone() {
            gone = true;
            runActions();
        }

        /** Runs each action added so far once, whichever thread takes it from the list first. */
        private void runActions() {
            for (Runnable action : actions) {
                if (actions.remove(action)) {
                    action.run();
                }
            }
        }
    }

    private static final byte[] DATA = "data: ".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] END_OF_EVENT = "\n\n".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] DONE = "[DONE]".getBytes(StandardCharsets.US_ASCII);
}
