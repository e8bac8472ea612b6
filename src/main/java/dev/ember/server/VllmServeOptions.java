package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.sampling.SamplingParams;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.Locale;


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

    @Option(names = "--quantization", paramLabel = "METHOD",
            description = "accepted for vLLM's command lines as none: Ember runs bf16, f16 and f32 weights (--dtype), and "
                    + "refuses a quantized checkpoint by name when it loads")
    String quantization;

    @Option(names = "--load-format", paramLabel = "FORMAT", defaultValue = "auto",
            description = "accepted for vLLM's command lines at auto or safetensors: Ember reads safetensors files; "
                    + "default: ${DEFAULT-VALUE}")
    String loadFormat;

    @Option(names = "--tokenizer-mode", paramLabel = "MODE", defaultValue = "auto",
            description = "accepted for vLLM's command lines at auto, hf or slow: Ember reads tokenizer.json with its own "
                    + "tokenizer, which encodes as HF's does; default: ${DEFAULT-VALUE}")
    String tokenizerMode;

    @Option(names = "--response-role", paramLabel = "ROLE", defaultValue = "assistant",
            description = "accepted for vLLM's command lines at assistant, the role of every chat answer; default: ${DEFAULT-VALUE}")
    String responseRole;

    @Option(names = "--uvicorn-log-level", paramLabel = "LEVEL",
            description = "accepted for vLLM's command lines: Ember's server logs its start, its errors and its end")
    String uvicornLogLevel;

    @Option(names = "--disable-uvicorn-access-log", description = "accepted for vLLM's command lines: Ember logs no access lines")
    boolean disableAccessLog;

    @Option(names = "--max-logprobs", paramLabel = "N", defaultValue = "" + SamplingParams.MAX_LOGPROBS,
            description = "the most logprobs (and prompt logprobs) a request may ask for, up to " + SamplingParams.MAX_LOGPROBS
                    + "; default: ${DEFAULT-VALUE}, as vLLM's")
    int maxLogprobs;

    @Option(names = "--task", paramLabel = "TASK", defaultValue = "auto",
            description = "accepted for vLLM's command lines at auto or generate: Ember generates text; default: ${DEFAULT-VALUE}")
    String task;

    @Option(names = "--runner", paramLabel = "RUNNER", defaultValue = "auto",
            description = "accepted for vLLM's command lines at auto or generate: Ember generates text; default: ${DEFAULT-VALUE}")
    String runner;

    @Option(names = "--config-format", paramLabel = "FORMAT", defaultValue = "auto",
            description = "accepted for vLLM's command lines at auto or hf: Ember reads config.json; default: ${DEFAULT-VALUE}")
    String configFormat;

    @Option(names = "--disable-frontend-multiprocessing",
            description = "accepted for vLLM's command lines: Ember's server and engine are one process")
    boolean disableFrontendMultiprocessing;

    /** Checks what was asked before a model is loaded: {@code prefixCaching} whether prefix caching is on. */
    void check(boolean prefixCaching) {
        EmberException.require(!enablePrefixCaching || prefixCaching,
                "--enable-prefix-caching and --no-prefix-caching ask for opposite things: give one");
        EmberException.require(blockSize == KvCacheSpec.DEFAULT_BLOCK_SIZE, "--block-size " + blockSize
                + " is not supported: Ember's KV-cache blocks hold " + KvCacheSpec.DEFAULT_BLOCK_SIZE + " tokens");
        EmberException.require(swapSpace == null || swapSpace >= 0, "--swap-space must not be negative, got " + swapSpace);
        EmberException.require(kvCacheDtype.equals("auto"), "--kv-cache-dtype " + kvCacheDtype
                + " is not supported: the KV cache holds the model's own type (auto)");
        OpenAiServer.Config.checkMaxLogprobs(maxLogprobs);  // before the model loads
        EmberException.require(List.of("auto", "generate").contains(task), "--task " + task
                + " is not supported: Ember generates text (auto, generate)");
        EmberException.require(List.of("auto", "generate").contains(runner), "--runner " + runner
                + " is not supported: Ember generates text (auto, generate)");
        EmberException.require(List.of("auto", "hf").contains(configFormat), "--config-format " + configFormat
                + " is not supported: Ember reads the Hugging Face config.json (auto, hf)");
        EmberException.require(quantization == null || quantization.equalsIgnoreCase("none"), "--quantization " + quantization
                + " is not supported: Ember runs bf16, f16 and f32 weights (--dtype converts a checkpoint between them)");
        EmberException.require(loadFormat.equals("auto") || loadFormat.equals("safetensors"), "--load-format " + loadFormat
                + " is not supported: Ember reads safetensors files (auto, safetensors)");
        EmberException.require(List.of("auto", "hf", "slow").contains(tokenizerMode), "--tokenizer-mode " + tokenizerMode
                + " is not supported: Ember reads tokenizer.json (auto, hf, slow)");
        EmberException.require(responseRole.equals("assistant"), "--response-role " + responseRole
                + " is not supported: chat answers come from the assistant");
        EmberException.require(uvicornLogLevel == null || List.of("critical", "error", "warning", "info", "debug", "trace")
                .contains(uvicornLogLevel.toLowerCase(Locale.ROOT)), "--uvicorn-log-level " + uvicornLogLevel
                + " is not one of critical, error, warning, info, debug, trace");
    }
}
