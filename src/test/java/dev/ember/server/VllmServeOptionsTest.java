package dev.ember.server;

import dev.ember.EmberException;
import dev.ember.model.DType;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

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
                "--max-model-len", "512", "--gpu-memory-utilization", "0.8", "--served-model-name", "tiny", "--enforce-eager");
        command.vllmOptions.check(true);
        command.vllmOptions.checkType(DType.BF16);
        parsed("--dtype", "auto").vllmOptions.checkType(DType.F16);
        parsed("--dtype", "half").vllmOptions.checkType(DType.F16);
    }

    @Test
    void whatEmberDoesNotDoIsRefusedByName() {
        assertMessage(() -> parsed("--dtype", "float16").vllmOptions.checkType(DType.BF16), "--dtype float16");
        assertMessage(() -> parsed("--dtype", "int8").vllmOptions.checkType(DType.BF16), "--dtype int8 is not one of");
        assertMessage(() -> parsed("--kv-cache-dtype", "fp8").vllmOptions.check(true), "--kv-cache-dtype fp8");
        assertMessage(() -> parsed("--enable-prefix-caching", "--no-prefix-caching").vllmOptions.check(false),
                "--enable-prefix-caching and --no-prefix-caching");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable check, String expected) {
        EmberException e = assertThrows(EmberException.class, check);
        assertTrue(e.getMessage().startsWith(expected), e.getMessage());
    }
}
