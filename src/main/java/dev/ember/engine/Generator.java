package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.SubmittedStep;
import dev.ember.kvcache.BlockTable;
import dev.ember.sampling.Sampler;
import dev.ember.sampling.SamplingParams;
import dev.ember.sampling.StopStrings;
import dev.ember.scheduler.FinishReason;
import dev.ember.tokenizer.StreamingDecoder;
import dev.ember.tokenizer.Tokenizer;
import dev.ember.trace.Trace;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Generates text for one request at a time: a chunked prefill of the prompt, then one decode step per
 * token, streaming text as it is produced. The serving engine batches many such requests; this class is
 * the simplest complete loop, and the reference the batched one must agree with.
 */
public final class Generator {
    public static final int DEFAULT_CHUNK_TOKENS = 512;

    private final ModelRunner runner;
    /** Null for a generator of token ids only (random-weight benchmark models have no tokenizer). */
    private final Tokenizer tokenizer;
    private final int chunkTokens;
    private final Set<Integer> eosIds;
    private Trace trace = Trace.OFF;

    public Generator(ModelRunner runner, Tokenizer tokenizer) {
        this(runner, tokenizer, DEFAULT_CHUNK_TOKENS);
    }

    /** @param chunkTokens the most prompt tokens fed to one forward step (chunked prefill) */
    public Generator(ModelRunner runner, Tokenizer tokenizer, int chunkTokens) {
        if (chunkTokens < 1) {
            throw new EmberException("chunk length must be at least 1, got " + chunkTokens);
        }
        this.runner = runner;
        this.tokenizer = tokenizer;
        this.chunkTokens = chunkTokens;
        Set<Integer> eos = new HashSet<>(runner.config().eosTokenIds());
        if (tokenizer != null) {
            eos.addAll(tokenizer.stopTokenIds());
        }
        this.eosIds = Set.copyOf(eos);
    }

    /**
     * A generator of token ids only, for models without a tokenizer (random-weight presets): results carry the
     * tokens and timings, and no text.
     */
    public static Generator tokensOnly(ModelRunner runner, int chunkTokens) {
        return new Generator(runner, null, chunkTokens);
    }

    /** Reports each prefill chunk, decode step and sampling to {@code trace} ({@link Trace#OFF} by default). */
    public void setTrace(Trace trace) {
        this.trace = trace;
    }

    /** The longest sequence (prompt plus generated tokens) this generator can hold. */
    public int contextLength() {
        return (int) Math.min(runner.config().maxPositions(), runner.kvSpec().tokenCapacity());
    }

    public GenerationResult generate(String prompt, SamplingParams params, Consumer<String> onText) {
        if (tokenizer == null) {
            throw new EmberException("this generator has no tokenizer: give it token ids");
        }
        return generate(tokenizer.encode(prompt), params, onText);
    }

    public GenerationResult generate(int[] prompt, SamplingParams params, Consumer<String> onText) {
        int context = contextLength();
        if (prompt.length == 0) {
            throw new EmberException("the prompt is empty");
        }
        if (prompt.length >= context) {
            throw new EmberException("prompt of " + prompt.length + " tokens does not fit the context of " + context
                    + " tokens (it needs room for at least one generated token)");
        }
        int vocab = runner.config().vocabSize();
        Sampler sampler = new Sampler(params, vocab);
        for (int t : prompt) {
            sampler.observe(t);
        }
        // Special tokens are left out of the text, as vLLM and transformers do by default (skip_special_tokens).
        StreamingDecoder decoder = tokenizer != null ? tokenizer.streamingDecoder(true) : null;
        StopStrings stops = new StopStrings(params.stopStrings());
        StringBuilder text = new StringBuilder();
        Consumer<String> emit = piece -> {
            if (!piece.isEmpty()) {
                text.append(piece);
                onText.accept(piece);
            }
        };
        int budget = Math.min(params.maxTokens(), context - prompt.length);
        int[] generated = new int[budget];
        int count = 0;
        Sampler[] samplers = {null};
        int[] next = new int[1];
        BlockTable table = new BlockTable(runner.kvSpec().blockSize());
        FinishReason finish = FinishReason.LENGTH;
        long start = System.nanoTime();
        long firstToken = start;
        try {
            table.reserveOrFail(prompt.length + budget, runner.blockAllocator());
            for (int pos = 0; pos < prompt.length; pos += chunkTokens) {
                int end = Math.min(prompt.length, pos + chunkTokens);
                samplers[0] = end == prompt.length ? sampler : null;  // only the prompt's last token is followed by a choice
                long traced = trace.start();
                runner.forwardAndSample(ForwardBatch.of(new ForwardBatch.Chunk(Arrays.copyOfRange(prompt, pos, end), pos, table)),
                        samplers, next);
                trace.end(Trace.ENGINE, "prefill_chunk", traced, "tokens", end - pos);
            }
            // Decode: the step that samples token c takes token c - 1 at position prompt + c - 1. While the runner
            // computes it, the step after it is already submitted, carrying token c on the device, so that the host's
            // work on token c (text, stop checks) overlaps the device's on token c + 1; a sampler whose tokens are
            // drawn on the host runs one step at a time.
            boolean overlap = runner.carriesTokens(sampler);
            int token = next[0];
            SubmittedStep inFlight = null;
            while (true) {
                sampler.observe(token);
                generated[count++] = token;
                if (count == 1) {
                    firstToken = System.nanoTime();
                }
                boolean stop = !params.ignoreEos() && eosIds.contains(token);
                if (!stop && decoder != null) {
                    emit.accept(stops.feed(decoder.push(token)));
                    stop = stops.stopped();
                }
                if (stop) {
                    finish = FinishReason.STOP;
                    break;
                }
                if (count == budget) {
                    break;
                }
                long traced = trace.start();
                SubmittedStep following = inFlight != null && overlap
                        ? inFlight  // submitted last round, carrying this token
                        : runner.submit(ForwardBatch.of(new ForwardBatch.Chunk(new int[] {token}, prompt.length + count - 1, table)),
                                samplers);
                SubmittedStep after = null;
                if (overlap && count + 1 < budget) {
                    after = runner.submit(ForwardBatch.of(ForwardBatch.Chunk.carried(0, prompt.length + count, table)), samplers);
                }
                following.await(next);
                trace.end(Trace.ENGINE, "decode_step", traced, "position", prompt.length + count - 1);
                inFlight = after;
                token = next[0];
            }
            if (inFlight != null) {
                inFlight.await(next);  // a step past the stop: its token is dropped
            }
            if (decoder != null && !stops.stopped()) {
                emit.accept(stops.feed(decoder.flush()));
                emit.accept(stops.finish());
            }
        } finally {
            table.release(runner.blockAllocator());
        }
        long end = System.nanoTime();
        trace.end(Trace.ENGINE, "generate", start, "prompt_tokens", prompt.length);
        return new GenerationResult(text.toString(), prompt.clone(), Arrays.copyOf(generated, count), finish,
                firstToken - start, count > 0 ? end - firstToken : 0);
    }

}
