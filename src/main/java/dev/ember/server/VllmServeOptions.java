package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.kvcache.KvCacheSpec;
import picocli.CommandLine.Option;


/**
 * Options of {@code vllm serve} that a command line written for vLLM carries and that ask for nothing Ember does
 * otherwise: taken where they hold (the model's own type, the cache's, caching and chunking that are on anyway), refused
 * by name where they ask for something Ember does not do, so that such a command line starts Ember as it started vLLM.
 */
final class VllmServeOptions {
    @Option(names = "--trust-remote-code", description = "accepted for vLLM's command lines: Ember runs no code of a checkpoint's")
    boolean trustRemoteCode;

    @Option(names = "--kv-cache-dtype", paramLabel = "TYPE", defaultValue = "auto",
            description = "accepted for vLLM's command lines at auto: the KV cache holds the model's type; default: ${DEFAULT-VALUE}")
    String kvCacheDtype;

    @Option(names = "--enable-prefix-caching",
            description = "accepted for vLLM's command lines: prefix caching is on unless --no-prefix-caching")
    boolean enablePrefixCaching;

    @Option(names = "--enable-chunked-prefill", description = "accepted for vLLM's command lines: prefill is always chunked (--chunk-len)")
    boolean enableChunkedPrefill;

    @Option(names = "--disable-log-requests", description = "accepted for vLLM's command lines: Ember does not log requests")
    boolean disableLogRequests;

    @Option(names = "--disable-log-stats",
            description = "accepted for vLLM's command lines: Ember logs no periodic statistics (/metrics has them)")
    boolean disableLogStats;

    @Option(names = "--block-size", paramLabel = "TOKENS", defaultValue = "" + KvCacheSpec.DEFAULT_BLOCK_SIZE,
            description = "tokens a KV-cache block holds: accepted for vLLM's command lines at Ember's ${DEFAULT-VALUE}")
    int blockSize;

    @Option(names = "--swap-space", paramLabel = "GiB",
            description = "accepted for vLLM's command lines: Ember swaps no KV blocks to host memory (a preempted request "
                    + "is computed again), so it takes none")
    Double swapSpace;

    /** Checks what was asked before a model is loaded: {@code prefixCaching} whether prefix caching is on. */
    void check(boolean prefixCaching) {
        EmberException.require(!enablePrefixCaching || prefixCaching,
                "--enable-prefix-caching and --no-prefix-caching ask for opposite things: give one");
        EmberException.require(blockSize == KvCacheSpec.DEFAULT_BLOCK_SIZE, "--block-size " + blockSize
                + " is not supported: Ember's KV-cache blocks hold " + KvCacheSpec.DEFAULT_BLOCK_SIZE + " tokens");
        EmberException.require(swapSpace == null || swapSpace >= 0, "--swap-space must not be negative, got " + swapSpace);
        EmberException.require(kvCacheDtype.equals("auto"), "--kv-cache-dtype " + kvCacheDtype
                + " is not supported: the KV cache holds the model's own type (auto)");
    }
}
