package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.model.DType;
import dev.ember.scheduler.SchedulePolicy;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

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
                "--disable-uvicorn-access-log", "--revision", "main", "--download-dir", "/tmp/hf", "--max-logprobs", "5");
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
        assertMessage(() -> parsed("--load-format", "pt").vllmOptions.check(true), "--load-format pt is not supported");
        assertMessage(() -> parsed("--tokenizer-mode", "mistral").vllmOptions.check(true), "--tokenizer-mode mistral");
        assertMessage(() -> parsed("--response-role", "bot").vllmOptions.check(true), "--response-role bot");
        assertMessage(() -> parsed("--uvicorn-log-level", "loud").vllmOptions.check(true), "--uvicorn-log-level loud");
        assertMessage(() -> parsed("--enable-prefix-caching", "--no-prefix-caching").vllmOptions.check(false),
                "--enable-prefix-caching and --no-prefix-caching");
        assertMessage(() -> parsed("--block-size", "32").vllmOptions.check(true), "--block-size 32 is not supported");
        assertMessage(() -> parsed("--swap-space", "-1").vllmOptions.check(true), "--swap-space must not be negative");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable check, String expected) {
        EmberException e = assertThrows(EmberException.class, check);
        assertTrue(e.getMessage().startsWith(expected), e.getMessage());
    }
}
