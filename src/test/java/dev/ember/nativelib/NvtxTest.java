package dev.ember.nativelib;

import dev.ember.StandIns;
import dev.ember.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The NVTX binding against CUDA 13's libnvtx3interop where it is installed (it is on the CPU build machines that have
 * the toolkit): without a tool ranges go nowhere, and with a stand-in tool (src/test/resources/fake-nvtx, built here
 * with gcc and injected as nsys injects itself) an {@code ember bench stage} run shows its steps, layers and stages as
 * properly nested ranges.
 */
class NvtxTest {

    private static void assumeLibrary() {
        var missing = Nvtx.whyUnavailable();
        if (missing.isPresent()) {
            System.out.println("[nvtx] NVTX tests skipped: " + missing.get());
        }
        assumeTrue(missing.isEmpty(), () -> "no NVTX library: " + missing.orElseThrow());
    }

    @Test
    void offCostsNothingAndNeedsNoLibrary() {
        assertFalse(Nvtx.OFF.enabled());
        assertEquals(Nvtx.NO_PUSH_POP_TRACKING, Nvtx.OFF.push("anything"));
        assertEquals(Nvtx.NO_PUSH_POP_TRACKING, Nvtx.OFF.pop());
        Nvtx.OFF.mark("anything");
        assumeFalse(Nvtx.toolAttached(), "a tool is attached to this JVM");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertSame(Nvtx.OFF, Nvtx.open(false, new PrintStream(log)), "not asked for and no tool: off");
        assertEquals("", log.toString(StandardCharsets.UTF_8), "and nothing said");
    }

    @Test
    void withoutAToolRangesGoNowhere() {
        assumeLibrary();
        assumeFalse(Nvtx.toolAttached(), "a tool is attached to this JVM");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        Nvtx nvtx = Nvtx.open(true, new PrintStream(log, true, StandardCharsets.UTF_8));
        assertTrue(nvtx.enabled());
        assertTrue(log.toString(StandardCharsets.UTF_8).startsWith("ember: NVTX ranges on, through "), log.toString());
        assertEquals(Nvtx.NO_PUSH_POP_TRACKING, nvtx.push("step"));
        assertEquals(Nvtx.NO_PUSH_POP_TRACKING, nvtx.push("layer 0"));
        nvtx.mark("checkpoint");
        assertEquals(Nvtx.NO_PUSH_POP_TRACKING, nvtx.pop());
        assertEquals(Nvtx.NO_PUSH_POP_TRACKING, nvtx.pop());
    }

    @Test
    void anInjectedToolSeesNestedRangesOfStepsLayersAndStages(@TempDir Path dir) throws IOException, InterruptedException {
        assumeLibrary();
        Path tool = dir.resolve("libfakenvtx.so");
        StandIns.compile("src/test/resources/fake-nvtx/fake_nvtx.c", tool);
        Path ranges = dir.resolve("ranges.txt");
        // No --nvtx: a tool being attached turns the ranges on, as under nsys.
        String log = StandIns.ember(dir, Map.of(Nvtx.INJECTION_VARIABLE, tool.toString(), "FAKE_NVTX_LOG", ranges.toString()),
                "bench", "stage", "--model", "models/ember-tiny", "--backend", "cpu", "--threads", "2",
                "--prompt-len", "16", "--decode-steps", "2", "--chunk-len", "16", "--iters", "1", "--warmup", "0",
                "--decode-with-sampling");
        assertTrue(log.contains("NVTX ranges on") && log.contains("(a tool is attached)"), log);

        List<String> lines = Files.readAllLines(ranges);
        assertEquals("injected", lines.getFirst());
        // Replay the calls: every pop closes the innermost open range, and each range sits in the right parent.
        Deque<String> open = new ArrayDeque<>();
        List<String> steps = new ArrayList<>();
        int layerRanges = 0, stageRanges = 0;
        for (String line : lines.subList(1, lines.size())) {
            String[] parts = line.split(" ", 3);
            switch (parts[0]) {
                case "push" -> {
                    assertEquals(open.size(), Integer.parseInt(parts[1]), line);
                    String name = parts[2], parent = open.peek();
                    if (name.equals("prefill_chunk") || name.equals("decode_step")) {
                        assertNull(parent, name + " is outermost");
                        steps.add(name);
                    } else if (name.startsWith("layer ")) {
                        assertTrue(steps.getLast().equals(parent), name + " inside a step, not " + parent);
                        layerRanges++;
                    } else {
                        assertTrue(parent != null && (parent.startsWith("layer ") || parent.equals(steps.getLast())),
                                name + " inside a layer or a step, not " + parent);
                        assertTrue(List.of("embedding", "rmsnorm", "attention", "ffn", "sampling", "lm_head").contains(name), name);
                        stageRanges++;
                    }
                    open.push(name);
                }
                case "pop" -> {
                    assertFalse(open.isEmpty(), line);
                    open.pop();
                    assertEquals(open.size(), Integer.parseInt(parts[1]), line);
                }
                default -> fail("unexpected call: " + line);
            }
        }
        assertTrue(open.isEmpty(), "every range closed: " + open);
        assertEquals(List.of("prefill_chunk", "decode_step", "decode_step"), steps);
        assertEquals(3 * ModelConfig.read(Path.of("models", "ember-tiny", "config.json")).numLayers(), layerRanges,
                "every layer of every step, once");
        assertTrue(stageRanges > layerRanges, "stages inside the layers: " + stageRanges);
    }
}
