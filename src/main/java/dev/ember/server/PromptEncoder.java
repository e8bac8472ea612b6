package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.tokenizer.Tokenizer;

import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Turns request text into token ids without stalling anyone else. Text far longer than the context can hold is
 * refused before it is tokenized at all ({@link #MAX_CHARS_PER_TOKEN} characters a token is more than any
 * tokenizer averages), and tokenizing runs on a few platform threads of its own, behind a bounded queue: the Rust
 * tokenizer is a native call, which would pin the carrier of a virtual thread, so that a few large prompts could
 * hold every carrier and starve every other request (streams, {@code /health}) while they are tokenized.
 */
final class PromptEncoder implements AutoCloseable {
    /** A generous bound on the characters of one token: text longer than context x this cannot fit the context. */
    static final int MAX_CHARS_PER_TOKEN = 32;
    private static final int QUEUE = 1024;

    private final Tokenizer tokenizer;
    private final long maxChars;
    private final int contextLength;
    private final ThreadPoolExecutor pool;

    PromptEncoder(Tokenizer tokenizer, int contextLength) {
        this.tokenizer = tokenizer;
        this.contextLength = contextLength;
        this.maxChars = (long) contextLength * MAX_CHARS_PER_TOKEN;
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors() / 2);
        this.pool = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.SECONDS, new ArrayBlockingQueue<>(QUEUE),
                Thread.ofPlatform().name("ember-tokenize-", 0).daemon(true).factory());
    }

    Tokenizer tokenizer() {
        return tokenizer;
    }

    /** Refuses text of {@code chars} characters as far too long for the context, before any work on it. */
    void checkLength(long chars, String param) {
        if (chars > maxChars) {
            throw ApiException.invalid(param, param + " has " + chars + " characters, far more than the context of "
                    + contextLength + " tokens can hold (more than " + MAX_CHARS_PER_TOKEN + " characters a token)");
        }
    }

    /** The ids of {@code text}, checked for length first and tokenized on the pool; a bad text is a 400 naming {@code param}. */
    int[] encode(String text, boolean addSpecialTokens, String param) throws InterruptedException {
        checkLength(text.length(), param);
        return run(() -> tokenizer.encode(text, addSpecialTokens), param);
    }

    /** Runs tokenizer work on the pool and waits for it; an {@link EmberException} it throws is a 400 naming {@code param}. */
    <T> T run(Callable<T> work, String param) throws InterruptedException {
        Future<T> result;
        try {
            result = pool.submit(work);
        } catch (RejectedExecutionException e) {
            throw new ApiException(503, "service_unavailable", null, "server_busy",
                    "too many prompts are waiting to be tokenized (" + QUEUE + "); retry later");
        }
        try {
            return result.get();
        } catch (InterruptedException e) {
            result.cancel(true);
            throw e;
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof ApiException api) {
                throw api;
            }
            if (cause instanceof EmberException ember) {
                throw ApiException.invalid(param, ember.getMessage());
            }
            throw cause instanceof RuntimeException r ? r : new IllegalStateException(cause);
        }
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }
}
