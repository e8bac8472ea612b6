package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.Progress;
import dev.ember.backend.Backend;
import dev.ember.backend.ModelRunner;
import dev.ember.backend.cpu.CpuBackend;
import dev.ember.engine.Speculation;
import dev.ember.kvcache.KvCacheSpec;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The batch limit of speculation: the measured default, a given limit, and none for a benchmark told none; vLLM's
 * --speculative-config read into the same options, its faults named; the draft's placement and weight type.
 */
class SpeculativeOptionsTest {
    private static SpeculativeOptions ngram(Integer disableAbove) {
        SpeculativeOptions o = new SpeculativeOptions();
        o.method = "ngram";
        o.gamma = 3;
        o.lookupMin = 1;
        o.lookupMax = 4;
        o.disableAbove = disableAbove;
        return o;
    }

    private static int limit(SpeculativeOptions o) {
        // n-gram lookup loads no draft, so nothing of the target is needed to open it.
        try (Speculation s = o.open(null, null, null, null).orElseThrow()) {
            assertEquals(3, s.gamma());
            return s.disableAboveBatch();
        }
    }

    @Test
    void withoutTheOptionSpeculationStopsAboveTheCrossoverMeasuredForItsMethodOnItsKindOfDevice() {
        assertEquals(SpeculativeOptions.CPU_NGRAM_DISABLE_ABOVE, limit(ngram(null)));
        try (Backend cpu = new CpuBackend(1); Speculation s = ngram(null).open(cpu, null, null, null).orElseThrow()) {
            assertEquals(SpeculativeOptions.CPU_NGRAM_DISABLE_ABOVE, s.disableAboveBatch());
        }
    }

    /** A draft model pays at batch 1 only, where it pays at all: its default limit is 1 wherever it runs. */
    @Test
    void aDraftModelSpeculatesAtBatchOneUnlessToldMore() {
        try (Backend cpu = new CpuBackend(1);
             Model target = ModelLoader.load(Path.of("models/ember-tiny"));
             ModelRunner runner = cpu.load(target, KvCacheSpec.forTokens(target.config(), 64, 16), Progress.NONE)) {
            for (String draft : new String[] {"self:1", "models/ember-tiny-draft"}) {
                try (Speculation s = parsed("--speculative-model", draft)
                        .open(cpu, LoadedModel.of(target, runner), null, Progress.NONE).orElseThrow();
                     Speculation told = parsed("--speculative-model", draft, "--speculative-disable-by-batch-size", "8")
                             .open(cpu, LoadedModel.of(target, runner), null, Progress.NONE).orElseThrow()) {
                    assertEquals(SpeculativeOptions.DRAFT_MODEL_DISABLE_ABOVE, s.disableAboveBatch(), draft);
                    assertEquals(8, told.disableAboveBatch(), draft);
                }
            }
        }
    }

    @Test
    void aGivenLimitIsKeptEverywhere() {
        assertEquals(8, limit(ngram(8)));
        assertEquals(8, limit(ngram(8).unlimitedUnlessGiven()));
        assertEquals(8, limit(ngram(8).orDefault("self:2")));
    }

    /** The options as a command line gives them. */
    private static SpeculativeOptions parsed(String... args) {
        GenerateCommand command = new GenerateCommand();
        String[] withPrompt = new String[args.length + 2];
        withPrompt[0] = "--prompt";
        withPrompt[1] = "hi";
        System.arraycopy(args, 0, withPrompt, 2, args.length);
        new CommandLine(command).parseArgs(withPrompt);
        return command.speculative;
    }

    @Test
    void vllmsSpeculativeConfigGivesTheSameOptions() {
        SpeculativeOptions o = parsed("--speculative-config",
                "{\"method\": \"ngram\", \"num_speculative_tokens\": 3, \"prompt_lookup_max\": 5, \"disable_by_batch_size\": 8}");
        assertTrue(o.given() && o.ngram());
        assertEquals(8, limit(o));
        SpeculativeOptions draft = parsed("--speculative-config", "{\"model\": \"self:2\", \"method\": \"draft_model\"}");
        assertFalse(draft.ngram());
        assertEquals(4, draft.gamma(), "the default number of drafted tokens");
        assertFalse(parsed().given());
        for (String[] bad : new String[][] {
                {"--speculative-config", "{\"method\": \"eagle\"}"},
                {"--speculative-config", "{\"num_speculative_tokens\": \"3\"}"},
                {"--speculative-config", "{\"speculative_token_tree\": []}"},
                {"--speculative-config", "[1]"},
                {"--speculative-config", "{\"num_speculative_tokens\": 3}", "--num-speculative-tokens", "2"}}) {
            EmberException e = assertThrows(EmberException.class, () -> parsed(bad).given());
            assertTrue(e.getMessage().startsWith("--speculative-config"), e.getMessage());
        }
    }

    /**
     * Seed 001's GPU strategies: same (and auto, which is same) run; separate and ratio take more devices than the CPU
     * has, and where a machine has them, a split Ember does not drive yet: each refused by name, as are malformed ones.
     */
    @Test
    void theDraftsPlacementIsSameUntilModelsSplitOverGpus() {
        try (Backend cpu = new CpuBackend(1)) {
            assertEquals(new DraftPlacement.Same(), parsed("--speculative-model", "self:1").placement(cpu));
            assertEquals(new DraftPlacement.Same(), parsed("--speculative-model", "self:1", "--speculative-placement", "same").placement(cpu));
            assertEquals(new DraftPlacement.Ratio(6, 2), DraftPlacement.parse("multi_gpu_ratio", 6, 2));
            assertEquals(8, DraftPlacement.parse("ratio", 6, 2).devices());
            assertMessage(() -> parsed("--speculative-model", "self:1", "--speculative-placement", "separate").placement(cpu),
                    "--speculative-placement separate takes 2 GPUs; ");
            assertMessage(() -> parsed("--speculative-model", "self:1", "--speculative-placement", "ratio", "--target-gpus", "6",
                    "--draft-gpus", "2").placement(cpu), "--speculative-placement ratio 6:2 takes 8 GPUs");
            assertMessage(() -> parsed("--speculative-model", "self:1", "--speculative-placement", "ratio").placement(cpu),
                    "--speculative-placement ratio needs --target-gpus N and --draft-gpus M");
            assertMessage(() -> parsed("--speculative-model", "self:1", "--target-gpus", "2").placement(cpu),
                    "--target-gpus and --draft-gpus go with --speculative-placement ratio");
            assertMessage(() -> parsed("--speculative-model", "self:1", "--speculative-placement", "ratio", "--target-gpus", "0",
                    "--draft-gpus", "2").placement(cpu), "--speculative-placement ratio takes at least one GPU");
            assertMessage(() -> parsed("--speculative-model", "self:1", "--speculative-placement", "nearby").placement(cpu),
                    "--speculative-placement nearby is not one of");
            assertMessage(() -> parsed("--speculative-method", "ngram", "--speculative-placement", "same").open(cpu, null, null, null),
                    "n-gram prompt lookup has no draft model to place");
            assertMessage(() -> parsed("--speculative-placement", "same").open(cpu, null, null, null),
                    "--speculative-placement places a draft model");
        }
    }

    /** A draft model runs in its target's weight type (as vLLM gives its draft the target's dtype). */
    @Test
    void aDraftModelTakesItsTargetsWeightType() {
        try (Backend cpu = new CpuBackend(1);
             Model target = ModelLoader.load(Path.of("models/ember-tiny"))
                     .withWeightType(DType.F32, Progress.NONE);
             ModelRunner runner = cpu.load(target,
                     KvCacheSpec.forTokens(target.config(), 64, 16), Progress.NONE);
             SpeculativeOptions.Draft draft = parsed("--speculative-model", "models/ember-tiny-draft")
                     .openDraft(cpu, LoadedModel.of(target, runner), null, 64, Progress.NONE)) {
            assertEquals(DType.F32, draft.runner().config().dtype());
        }
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable check, String expected) {
        EmberException e = assertThrows(EmberException.class, check);
        assertTrue(e.getMessage().startsWith(expected), e.getMessage());
    }

    @Test
    void aBenchmarkToldNoLimitSpeculatesAtEveryBatch() {
        assertEquals(Integer.MAX_VALUE, limit(ngram(null).unlimitedUnlessGiven()));
    }
}
