package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.model.DType;
import dev.ember.scheduler.SchedulePolicy;
import dev.ember.model.GenerationConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

/** A command line written for `vllm serve` parses: what holds is taken, what Ember does not do is refused by name. */
class VllmServeOptionsTest {
    private static ServeCommand parsed(String... args) {
        ServeCommand command = new ServeCommand();
        new CommandLine(command).parseArgs(args);
        return command;
    }

    @Test
    void vllmsUsualFlagsAreTakenWhereTheyHold() {
        ServeCommand command = parsed("models/ember-tiny", "--trust-remote-code", "--dtype", "bfloat16", "--kv-cache-dtype", "auto",
                "--enable-prefix-caching", "--enable-chunked-prefill", "--disable-log-requests", "--disable-log-stats",
                "--max-model-len", "512", "--gpu-memory-utilization", "0.8", "--served-model-name", "tiny", "--enforce-eager",
                "--block-size", "16", "--swap-space", "4", "--seed", "0", "--quantization", "none", "--load-format", "safetensors",
                "--tokenizer-mode", "auto", "--response-role", "assistant", "--uvicorn-log-level", "warning",
                "--disable-uvicorn-access-log", "--revision", "main", "--download-dir", "/tmp/hf", "--max-logprobs", "5", "--task", "generate",
                "--runner", "generate", "--config-format", "hf", "--disable-frontend-multiprocessing");
        command.vllmOptions.check(true);
        assertEquals(5, command.vllmOptions.maxLogprobs);
        assertEquals(Optional.of(DType.BF16), command.modelOptions.dtype());
        assertEquals(Optional.empty(), parsed("--dtype", "auto").modelOptions.dtype());
        assertEquals(Optional.of(DType.F16), parsed("--dtype", "half").modelOptions.dtype());
        assertEquals(Optional.of(DType.F32), parsed("--dtype", "float").modelOptions.dtype());
        assertEquals(0L, command.seed);
        assertNull(parsed().seed, "without --seed each request draws a random seed");
        assertFalse(parsed("--no-enable-prefix-caching").schedulerOptions.config(1, SchedulePolicy.DECODE_FIRST).prefixCaching());
    }

    @Test
    void whatEmberDoesNotDoIsRefusedByName() {
        assertMessage(() -> parsed("--dtype", "int8").modelOptions.dtype(), "--dtype int8 is not one of");
        assertMessage(() -> parsed("--kv-cache-dtype", "fp8").vllmOptions.check(true), "--kv-cache-dtype fp8");
        assertMessage(() -> parsed("--quantization", "awq").vllmOptions.check(true), "--quantization awq is not supported");
        assertMessage(() -> parsed("--max-logprobs", "50").vllmOptions.check(true), "--max-logprobs 50 is not supported");
        assertMessage(() -> parsed("--task", "embed").vllmOptions.check(true), "--task embed is not supported");
        assertMessage(() -> parsed("--runner", "pooling").vllmOptions.check(true), "--runner pooling is not supported");
        assertMessage(() -> parsed("--config-format", "mistral").vllmOptions.check(true), "--config-format mistral");
        assertMessage(() -> parsed("--load-format", "pt").vllmOptions.check(true), "--load-format pt is not supported");
        assertMessage(() -> parsed("--tokenizer-mode", "mistral").vllmOptions.check(true), "--tokenizer-mode mistral");
        assertMessage(() -> parsed("--response-role", "bot").vllmOptions.check(true), "--response-role bot");
        assertMessage(() -> parsed("--uvicorn-log-level", "loud").vllmOptions.check(true), "--uvicorn-log-level loud");
        assertMessage(() -> parsed("--enable-prefix-caching", "--no-prefix-caching").vllmOptions.check(false),
                "--enable-prefix-caching and --no-prefix-caching");
        assertMessage(() -> parsed("--block-size", "32").vllmOptions.check(true), "--block-size 32 is not supported");
        assertMessage(() -> parsed("--swap-space", "-1").vllmOptions.check(true), "--swap-space must not be negative");
    }

    /**
     * vLLM's --generation-config DIR and --override-generation-config: a folder's file, or the model's, with the
     * override's values over it (alone with vllm); bad overrides refused by name.
     */
    @Test
    void generationConfigFromAFolderWithOverrides(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("generation_config.json"), "{\"temperature\": 0.6, \"top_p\": 0.9}");
        PrintStream quiet = new PrintStream(OutputStream.nullOutputStream());
        assertEquals(Map.of("temperature", (double) 0.6f, "top_p", (double) 0.9f),
                parsed("--generation-config", dir.toString()).samplingDefaults(null, quiet));
        assertEquals(Map.of("temperature", 0.2, "top_p", (double) 0.9f, "top_k", 20.0), parsed("--generation-config",
                dir.toString(), "--override-generation-config", "{\"temperature\": 0.2, \"top_k\": 20}").samplingDefaults(null, quiet));
        assertEquals(Map.of("min_p", 0.05), parsed("--generation-config", "vllm", "--override-generation-config",
                "{\"min_p\": 0.05}").samplingDefaults(dir, quiet));
        assertEquals(Map.of("temperature", (double) 0.6f, "top_p", (double) 0.9f), parsed().samplingDefaults(dir, quiet),
                "auto: the model's own file");
        assertMessage(() -> GenerationConfig.overrides("{\"max_new_tokens\": 5}"),
                "--override-generation-config: \"max_new_tokens\" is not one of");
        assertMessage(() -> GenerationConfig.overrides("{\"top_p\": 0}"),
                "--override-generation-config: top_p 0 is out of range");
        assertMessage(() -> GenerationConfig.overrides("[1]"), "--override-generation-config must be a JSON object");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable check, String expected) {
        EmberException e = assertThrows(EmberException.class, check);
        assertTrue(e.getMessage().startsWith(expected), e.getMessage());
    }
}
