package dev.ember.backend.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The CUlaunchConfig and CUlaunchAttribute offsets KernelArgs writes for cuLaunchKernelEx, against cuda.h as a C
 * compiler lays the structs out: checked here, without a GPU, wherever the CUDA headers and gcc are.
 */
class KernelArgsLayoutTest {

    @Test
    void launchConfigOffsetsMatchCudaH(@TempDir Path dir) throws IOException, InterruptedException {
        Path include = Stream.of(System.getenv("CUDA_HOME"), "/usr/local/cuda")
                .filter(h -> h != null && Files.exists(Path.of(h, "include", "cuda.h")))
                .map(h -> Path.of(h, "include")).findFirst().orElse(null);
        assumeTrue(include != null, "no cuda.h (CUDA_HOME, /usr/local/cuda) to check the launch structs against");
        Path source = dir.resolve("layout.c"), program = dir.resolve("layout");
        Files.writeString(source, """
                #include <cuda.h>
                #include <stdio.h>
                #include <stddef.h>
                int main(void) {
                    printf("%zu %zu %zu %zu %zu %zu %zu %d\\n", sizeof(CUlaunchConfig), sizeof(CUlaunchAttribute),
                           offsetof(CUlaunchConfig, hStream), offsetof(CUlaunchConfig, attrs),
                           offsetof(CUlaunchConfig, numAttrs), offsetof(CUlaunchAttribute, value),
                           offsetof(CUlaunchConfig, sharedMemBytes),
                           (int) CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION);
                    return 0;
                }
                """);
        Process gcc;
        try {
            gcc = new ProcessBuilder("gcc", "-I" + include, "-o", program.toString(), source.toString()).inheritIO().start();
        } catch (IOException e) {
            assumeTrue(false, "no gcc: " + e.getMessage());
            return;
        }
        assertEquals(0, gcc.waitFor(), "gcc layout.c");
        Process run = new ProcessBuilder(program.toString()).start();
        String[] v = new String(run.getInputStream().readAllBytes()).trim().split(" ");
        assertEquals(0, run.waitFor());
        assertEquals(KernelArgs.CONFIG_BYTES, Long.parseLong(v[0]), "sizeof(CUlaunchConfig)");
        assertEquals(KernelArgs.ATTRIBUTE_BYTES, Long.parseLong(v[1]), "sizeof(CUlaunchAttribute)");
        assertEquals(KernelArgs.STREAM_OFFSET, Long.parseLong(v[2]), "hStream");
        assertEquals(KernelArgs.ATTRIBUTES_OFFSET, Long.parseLong(v[3]), "attrs");
        assertEquals(KernelArgs.ATTRIBUTE_COUNT_OFFSET, Long.parseLong(v[4]), "numAttrs");
        assertEquals(KernelArgs.VALUE_OFFSET, Long.parseLong(v[5]), "the attribute's value");
        assertEquals(24, Long.parseLong(v[6]), "sharedMemBytes, after six unsigned grid and block sizes");
        assertEquals(KernelArgs.CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, Integer.parseInt(v[7]));
    }
}
