package dev.ember.backend.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.Numerics;
import dev.ember.Progress;
import dev.ember.backend.ForwardBatch;
import dev.ember.backend.GreedyAgreement;
import dev.ember.backend.ModelRunner;
import dev.ember.engine.Generator;
import dev.ember.engine.LlmEngine;
import dev.ember.kvcache.BlockTable;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.model.SafeTensorsFile;
import dev.ember.model.Tensor;
import dev.ember.sampling.SamplingParams;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.ember.JsonArrays.ints;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA backend against HF transformers. Random-weight models of each family, built, saved in bf16 and run by
 * transformers on the GPU host (tools/gpu/hf_models.py, whose output directory the system property
 * {@code ember.hf.dir} names; without it these tests skip, saying so): Ember loads each saved model, prefills every
 * prompt in chunks and decodes the continuation transformers chose, and its logits must be within 2e-2 (relative)
 * of the float32-upcast model's, with the same argmax wherever transformers' top-2 margin exceeds twice Ember's
 * largest deviation. And the trained default model: 64 greedy tokens, chosen on the GPU, identical to transformers'
 * (fp32-upcast, src/test/resources/fixtures/ember-tiny/reference.json) for every reference prompt.
 */
class HfGpuComparisonTest {
    private static final double LIMIT = 2e-2;
    private static final int CHUNK = 48;
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final Path TINY = Path.of("models", "ember-tiny");
    static final Path TINY_REFERENCE = Path.of("src", "test", "resources", "fixtures", "ember-tiny", "reference.json");

    static Stream<String> hfModels() throws IOException {
        String dir = System.getProperty("ember.hf.dir");
        if (dir == null || !Files.isDirectory(Path.of(dir))) {
            System.out.println("[gpu] HF comparison skipped: -Dember.hf.dir names no directory of models made by tools/gpu/hf_models.py"
                    + " (got " + dir + ")");
            return Stream.of("(none)");
        }
        try (Stream<Path> dirs = Files.list(Path.of(dir))) {
            return dirs.filter(d -> Files.isRegularFile(d.resolve("hf_reference.json")))
                    .map(Path::toString).sorted().toList().stream();
        }
    }

    @ParameterizedTest
    @MethodSource("hfModels")
    void logitsMatchTransformers(String directory) throws IOException {
        Assumptions.assumeFalse(directory.equals("(none)"), "no HF models (-Dember.hf.dir)");
        Gpu.context();
        Path dir = Path.of(directory);
        JsonNode ref = new ObjectMapper().readTree(dir.resolve("hf_reference.json").toFile());
        try (Arena arena = Arena.ofConfined(); Model model = ModelLoader.load(dir); CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 1024, 16), Progress.NONE)) {
            Map<String, Tensor> expected = SafeTensorsFile.map(dir.resolve("hf_logits.safetensors"), arena).tensors();
            int vocab = model.config().vocabSize();
            double worst = 0, transformersOwn = 0;
            int rows = 0, argmaxChecked = 0;
            for (int p = 0; p < ref.get("prompts").size(); p++) {
                int[] prompt = ints(ref.get("prompts").get(p));
                int[] continuation = ints(ref.get("continuations").get(p));
                Tensor hf = expected.get("logits." + p);
                Tensor hfBf16 = expected.get("logits_bf16." + p);
                BlockTable table = new BlockTable(16);
                assertTrue(table.reserve(prompt.length + continuation.length, runner.blockAllocator()));
                float[] logits = new float[vocab];
                for (int start = 0; start < prompt.length; start += CHUNK) {
                    int[] chunk = Arrays.copyOfRange(prompt, start, Math.min(prompt.length, start + CHUNK));
                    runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(chunk, start, table)), logits);
                }
                for (int step = 0; step <= continuation.length; step++) {
                    if (step > 0) {
                        runner.forward(ForwardBatch.of(new ForwardBatch.Chunk(new int[] {continuation[step - 1]},
                                prompt.length + step - 1, table)), logits);
                    }
                    double[] row = new double[vocab];
                    double maxDeviation = 0;
                    for (int i = 0; i < vocab; i++) {
                        row[i] = hf.data().getAtIndex(F32, (long) step * vocab + i);
                        maxDeviation = Math.max(maxDeviation, Math.abs(logits[i] - row[i]));
                    }
                    double error = Numerics.relativeError(logits, row);
                    float[] bf16Row = new float[vocab];
                    for (int i = 0; i < vocab; i++) {
                        bf16Row[i] = hfBf16.data().getAtIndex(F32, (long) step * vocab + i);
                    }
                    transformersOwn = Math.max(transformersOwn, Numerics.relativeError(bf16Row, row));
                    String where = dir.getFileName() + " prompt " + p + " (" + prompt.length + " tokens) step " + step;
                    assertTrue(error < LIMIT, where + ": relative error " + error);
                    worst = Math.max(worst, error);
                    rows++;
                    double[] sorted = row.clone();
                    Arrays.sort(sorted);
                    if (sorted[vocab - 1] - sorted[vocab - 2] > 2 * maxDeviation) {
                        argmaxChecked++;
                        assertEquals(Numerics.argmax(row), Numerics.argmax(logits, 0, vocab), where + ": argmax differs");
                    }
                }
                table.release(runner.blockAllocator());
            }
            System.out.printf("[gpu-check] vs HF transformers %-12s worst rel.err %.3e (limit %.0e; transformers' own bf16 run: "
                    + "%.3e) over %d rows, argmax equal at %d%n", dir.getFileName(), worst, LIMIT, transformersOwn, rows, argmaxChecked);
        }
    }

    @Test
    void theDefaultModelsGreedyTokensAreThoseOfTransformers() throws IOException {
        Gpu.context();
        JsonNode ref = new ObjectMapper().readTree(TINY_REFERENCE.toFile());
        JsonNode texts = ref.get("prompt_texts");
        try (Model model = ModelLoader.load(TINY); Tokenizer tokenizer = Tokenizer.load(TINY); CudaBackend backend = new CudaBackend();
             ModelRunner runner = backend.load(model, KvCacheSpec.forTokens(model.config(), 256, 16), Progress.NONE)) {
            Generator generator = new Generator(LlmEngine.of(runner, Generator.oneRequest(3), tokenizer));  // chunked prefill, then graph-replayed decodes
            List<int[]> prompts = new ArrayList<>(), expected = new ArrayList<>(), actual = new ArrayList<>();
            for (int p = 0; p < texts.size(); p++) {
                prompts.add(ints(ref.get("prompts").get(p)));
                expected.add(ints(ref.get("greedy_fp32").get(p)));
                actual.add(generator.generate(texts.get(p).asText(),
                        SamplingParams.greedy(expected.get(p).length).withIgnoreEos(true), piece -> { }).tokens());
            }
            // In bf16 the GPU may flip a choice transformers' fp32 run makes by a hair (the reference records margins of
            // 0.01 logits): the runs must agree up to such near-ties, judged by the GPU's own logits there.
            GreedyAgreement agreement = GreedyAgreement.judge(runner, prompts, expected, actual);
            agreement.differences().forEach(d -> System.out.println("[gpu-check] ember-tiny on the GPU against transformers: " + d));
            assertTrue(agreement.nearTiesOnly(), "not near-ties: " + agreement.realDifferences());
            System.out.printf("[gpu-check] ember-tiny on the GPU: %d greedy tokens identical to transformers for %d of %d prompts, "
                    + "the others up to a near-tie%n", expected.getFirst().length, agreement.identical(), texts.size());
        }
    }
}
