package dev.ember.bench;

import dev.ember.backend.DeviceCeilings;
import dev.ember.monitor.NvmlDevice;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class BenchHeaderTest {
    @Test
    void theHeaderNamesTheDeviceDriverModelTypeVersionAndCeilings() {
        BenchHeader h = new BenchHeader("bench x", "cpu (2 threads)", "ember-tiny", "bf16", "1.2.3",
                Instant.parse("2026-11-23T10:00:00Z"), new DeviceCeilings("cpu", 2.0e10, 3.0e11));
        Map<String, Object> m = h.toMap();
        assertEquals("cpu (2 threads)", m.get("device"));
        assertEquals(20.0, (Double) m.get("copy_bandwidth_gbps"), 1e-9);
        assertNull(m.get("read_bandwidth_gbps"), "not measured: null, never a made-up number");
        assertTrue(m.containsKey("driver"));
        // Without an NVIDIA driver there is no driver version to state; with one, NVML's.
        assertEquals(NvmlDevice.whyUnavailable(0) == null, m.get("driver") != null);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        h.print(new PrintStream(out, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("ember-tiny (bf16)") && text.contains("1.2.3") && text.contains("read not measured"), text);
    }
}
