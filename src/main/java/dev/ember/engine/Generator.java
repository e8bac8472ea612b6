package dev.ember.engine;

import dev.ember.EmberException;
import dev.ember.sampling.SamplingParams;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;

import java.util.function.Consumer;

/**
 * Generates for one request at a time on the caller's thread, streaming its text as it comes: the request is added to
 * an {@link LlmEngine} and the engine steps until it is done (nano-vllm's {@code generate}). {@code ember generate} and
 * {@code bench latency} use it; {@link ServingEngine} runs the same engine on a thread of its own for many callers.
 */
public final class Generator {
    public static final int DEFAULT_CHUNK_TOKENS = 512;

    private final LlmEngine engine;

    /** A generator over {@code engine}, which must have no requests of its own. */
    public Generator(LlmEngine engine) {
        this.engine = engine;
    }

    /**
     * The scheduler settings of one request at a time: prompts prefilled in chunks of at most {@code chunkTokens}, the
     * next step prepared while the device computes the current one, and no prefix cache, so that a prompt repeated to
     * time it is computed each time.
     */
    public static SchedulerConfig oneRequest(int chunkTokens) {
        if (chunkTokens < 1) {
            throw new EmberException("chunk length must be at least 1, got " + chunkTokens);
        }
        return new SchedulerConfig(1, chunkTokens, chunkTokens, SchedulePolicy.DECODE_FIRST, false, true);
    }

    public LlmEngine engine() {
        return engine;
    }

    /** Generates for {@code prompt}, encoded as HF's {@code tokenizer(text)} does; {@code onText} gets each piece. */
    public GenerationResult generate(String prompt, SamplingParams params, Consumer<String> onText) {
        if (engine.tokenizer() == null) {
            throw new EmberException("this model has no tokenizer: give the prompt as token ids");
        }
        return generate(engine.tokenizer().encode(prompt), params, onText);
    }

    /** Generates for {@code prompt}; {@code onText} gets each piece of text (none for a model without a tokenizer). */
    public GenerationResult generate(int[] prompt, SamplingParams params, Consumer<String> onText) {
        if (engine.hasWork()) {
            throw new IllegalStateException("the engine is busy with other requests");
        }
        long start = System.nanoTime();
        long[] firstToken = {0};
        String[] failure = {null};
        Sequence s = engine.add(prompt, params, new RequestListener() {
            @Override
            public void onToken(Sequence sequence, int token, String text) {
                if (firstToken[0] == 0) {
                    firstToken[0] = System.nanoTime();
                }
                if (!text.isEmpty()) {
                    onText.accept(text);
                }
            }

            @Override
            public void onError(Sequence sequence, String message) {
                failure[0] = message;
            }
        });
        while (engine.hasWork()) {
            engine.step();
        }
        if (failure[0] != null) {
            throw new EmberException("generation failed: " + failure[0]);
        }
        long end = System.nanoTime();
        int[] tokens = s.generatedTokens();
        long first = tokens.length > 0 ? firstToken[0] : end;
        return new GenerationResult(s.text(), prompt.clone(), tokens, s.finishReason(), first - start, end - first);
    }
}
