package dev.ember.engine;

import dev.ember.scheduler.FinishReason;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.Numerics;
import dev.ember.scheduler.FinishReason;
import static dev.ember.JsonArrays.ints;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.model.SafeTensorsFile;
import dev.ember.model.Tensor;
import dev.ember.scheduler.SchedulerConfig;
import dev.ember.scheduler.Sequence;
import dev.ember.sampling.SamplingParams;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The trained default model (models/ember-tiny) end to end, text in and text out, against what HF transformers
 * produced for it on the GPU host (src/test/resources/fixtures/ember-tiny): the tokenizer's prompt ids, the
 * last-position logits, and 64 greedy tokens and their text for every prompt.
 */
class DefaultModelTest {
    static final Path MODEL = Path.of("models", "ember-tiny");
    static final Path REFERENCE = Path.of("src", "test", "resources", "fixtures", "ember-tiny");
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static CpuBackend backend;
    static Model model;
    static Tokenizer tokenizer;
    static JsonNode reference;

    @BeforeAll
    static void load() throws IOException {
        backend = new CpuBackend(2);
        model = ModelLoader.load(MODEL);
        tokenizer = Tokenizer.load(MODEL);
        reference = new ObjectMapper().readTree(REFERENCE.resolve("reference.json").toFile());
    }

    @AfterAll
    static void close() {
        tokenizer.close();
        model.close();
        backend.close();
    }

    @Test
    void promptsTokenizeAsTransformersDid() {
        JsonNode texts = reference.get("prompt_texts");
        assertTrue(texts.size() >= 4);
        for (int p = 0; p < texts.size(); p++) {
            assertArrayEquals(ints(reference.get("prompts").get(p)), tokenizer.encode(texts.get(p).asText()), texts.get(p).asText());
        }
    }

    @Test
    void lastPositionLogitsMatchTheUpcastModel() throws IOException {
        int vocab = model.config().vocabSize();
        try (Arena arena = Arena.ofConfined();
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 64, 16), Progress.NONE)) {
            var logits = SafeTensorsFile.map(REFERENCE.resolve("reference.safetensors"), arena).tensors();
            for (int p = 0; p < reference.get("prompts").size(); p++) {
                int[] prompt = ints(reference.get("prompts").get(p));
                BlockTable table = new BlockTable(16);
                assertTrue(table.reserve(prompt.length, runner.blockAllocator()));
                float[] out = new float[vocab];
                runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(prompt, 0, table)), out);
                table.release(runner.blockAllocator());
                Tensor expected = logits.get("logits_fp32." + p);
                double[] ref = new double[vocab];
                for (int i = 0; i < vocab; i++) {
                    ref[i] = expected.data().getAtIndex(F32, i);
                }
                double error = Numerics.relativeError(out, ref);
                assertTrue(error < 1e-4, "prompt " + p + ": relative error " + error);
            }
        }
    }

    @Test
    void greedyContinuationsAreTokenForTokenThoseOfTransformers() throws IOException {
        JsonNode texts = reference.get("prompt_texts");
        try (ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 128, 16), Progress.NONE)) {
            // A chunk shorter than the prompts, so the chunked prefill path is the one checked.
            Generator generator = new Generator(LlmEngine.of(runner, Generator.oneRequest(3), tokenizer));
            for (int p = 0; p < texts.size(); p++) {
                int[] expected = ints(reference.get("greedy_fp32").get(p));
                StringBuilder streamed = new StringBuilder();
                GenerationResult result = generator.generate(texts.get(p).asText(),
                        SamplingParams.greedy(expected.length).withIgnoreEos(true), streamed::append);
                assertArrayEquals(expected, result.tokens(), "prompt " + p + " " + texts.get(p));
                assertEquals(reference.get("texts_fp32").get(p).asText(), result.text(), "prompt " + p);
                assertEquals(result.text(), streamed.toString(), "streamed pieces add up to the text");
                assertEquals(FinishReason.LENGTH, result.finishReason());
            }
        }
    }


    @Test
    void aTokensOnlyGeneratorChoosesTheSameTokensWithoutText() {
        int[] prompt = ints(reference.get("prompts").get(0));
        int[] expected = ints(reference.get("greedy_fp32").get(0));
        try (ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 128, 16), Progress.NONE)) {
            GenerationResult result = new Generator(LlmEngine.tokensOnly(runner, Generator.oneRequest(4))).generate(prompt,
                    SamplingParams.greedy(expected.length).withIgnoreEos(true), text -> fail("no text without a tokenizer"));
            assertArrayEquals(expected, result.tokens());
            assertEquals("", result.text());
            assertThrows(dev.ember.EmberException.class, () -> new Generator(LlmEngine.tokensOnly(runner, Generator.oneRequest(4))).generate("text", SamplingParams.greedy(1), t -> { }));
        }
    }

    /**
     * The choices of an {@code n > 1} request (copies of one prompt added together) compute the prompt once: the other
     * copies wait for it and take its full blocks from the prefix cache, and every copy chooses the tokens the prompt
     * alone does. Every block comes back.
     */
    @Test
    void copiesOfAPromptShareItsPrefillAndChooseItsTokens() {
        StringBuilder text = new StringBuilder();
        for (JsonNode t : reference.get("prompt_texts")) {
            text.append(t.asText()).append(' ');
        }
        int[] prompt = tokenizer.encode(text.toString().strip());
        int blockSize = 8;
        assertTrue(prompt.length > 3 * blockSize, prompt.length + " tokens");
        int[] alone = generateCopies(prompt, 1, blockSize)[0].generatedTokens();
        Sequence[] copies = generateCopies(prompt, 3, blockSize);
        for (int i = 0; i < copies.length; i++) {
            assertArrayEquals(alone, copies[i].generatedTokens(), "copy " + i);
            int shared = (prompt.length - 1) / blockSize * blockSize;
            assertEquals(i == 0 ? 0 : shared, copies[i].cachedPromptTokens(), "copy " + i);
        }
    }

    private static Sequence[] generateCopies(int[] prompt, int copies, int blockSize) {
        try (ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 512, blockSize), Progress.NONE)) {
            LlmEngine engine = LlmEngine.of(runner, SchedulerConfig.defaults(), tokenizer);
            Sequence[] sequences = new Sequence[copies];
            for (int i = 0; i < copies; i++) {
                sequences[i] = engine.add(prompt, SamplingParams.greedy(12).withIgnoreEos(true), RequestListener.NONE);
            }
            while (engine.hasWork()) {
                engine.step();
            }
            engine.scheduler().prefixCache().clear();
            assertEquals(runner.blockAllocator().capacity(), runner.blockAllocator().freeBlocks(), "KV blocks leaked");
            return sequences;
        }
    }
}
