package dev.ember.report;

import dev.ember.cli.GenerateCommandTest;
import dev.ember.cli.GenerateCommandTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.knowm.xchart.XYSeries;
import org.w3c.dom.Document;

import javax.imageio.ImageIO;
import javax.xml.parsers.DocumentBuilderFactory;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static dev.ember.cli.GenerateCommandTest.ember;
import static org.junit.jupiter.api.Assertions.*;

/** compare, plot and report on the committed sample results and on the tiny model, on the CPU. */
public class ReportCommandsTest {
    static final Path SAMPLES = Path.of("src/test/resources/bench-samples");
    static final Path A = SAMPLES.resolve("latency_cpu_threads1.csv");
    static final Path B = SAMPLES.resolve("latency_cpu_threads2.csv");

    public static void assertPng(Path png) throws IOException {
        BufferedImage image = ImageIO.read(png.toFile());
        assertNotNull(image, png + " is not a readable image");
        assertEquals(Charts.WIDTH, image.getWidth());
        assertEquals(Charts.HEIGHT, image.getHeight());
    }

    static void assertSvg(Path svg) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        Document doc = factory.newDocumentBuilder().parse(svg.toFile());
        assertEquals("svg", doc.getDocumentElement().getNodeName());
    }

    @Test
    void resultFilesTellMetricsFromKeys() {
        ResultFile a = ResultFile.read(A);
        assertEquals(List.of("prompt_len"), a.keys());
        assertTrue(a.metrics().containsAll(List.of("latency_ms_p50", "latency_ms_p95", "prefill_latency_ms_p50",
                "decode_tokens_per_s")));
        assertFalse(a.metrics().contains("peak_mem_bytes_mean"), "empty on the CPU, so not numeric");
        assertFalse(a.metrics().contains("iters"));
        assertEquals(List.of(List.of("a", "b,c", "d\"e"), List.of("1", "", "3")),
                ResultFile.parseCsv("a,\"b,c\",\"d\"\"e\"\n1,,3\n"));
        ResultFile json = ResultFile.read(SAMPLES.resolve("latency_cpu_threads1.json"));
        assertEquals(a.columns(), json.columns(), "the JSON's results rows hold the CSV's columns");
        assertEquals(a.rows().stream().map(r -> r.get("prompt_len")).toList(),
                json.rows().stream().map(r -> r.get("prompt_len")).toList());
    }

    @Test
    void compareMatchesRowsByPromptLengthAndGivesTheRatio(@TempDir Path dir) throws IOException {
        Path md = dir.resolve("cmp.md");
        Run run = ember("compare", A.toString(), B.toString(), "--out", md.toString());
        assertEquals(0, run.exitCode(), run.err());
        String text = Files.readString(md);
        assertTrue(text.contains("| prompt_len | metric | A | B | B/A |"), text);
        ResultFile a = ResultFile.read(A);
        ResultFile b = ResultFile.read(B);
        for (int i = 0; i < 3; i++) {
            String len = a.rows().get(i).get("prompt_len");
            double ratio = b.value(b.rows().get(i), "latency_ms_p50") / a.value(a.rows().get(i), "latency_ms_p50");
            String line = "| " + len + " | latency_ms_p50 | " + a.rows().get(i).get("latency_ms_p50") + " | "
                    + b.rows().get(i).get("latency_ms_p50") + " | " + String.format(java.util.Locale.ROOT, "%.3f", ratio) + " |";
            assertTrue(text.contains(line), line + "\n" + text);
        }
        assertTrue(run.out().contains("latency_ms_p95"));
    }

    @Test
    void compareSaysWhenNothingMatches(@TempDir Path dir) throws IOException {
        Path other = dir.resolve("other.csv");
        Files.writeString(other, "prompt_len,latency_ms_p50\n9999,1.0\n1234,2.0\n");
        Run run = ember("compare", A.toString(), other.toString(), "--out", dir.resolve("x.md").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().startsWith("ember: error: no row of"), run.err());
    }

    @Test
    void plotDrawsLatencyAgainstPromptLengthAsPngAndSvg(@TempDir Path dir) throws Exception {
        Run run = ember("plot", A.toString(), B.toString(), "--out-dir", dir.toString(), "--out-prefix", "cpu");
        assertEquals(0, run.exitCode(), run.err());
        assertPng(dir.resolve("cpu_latency.png"));
        assertSvg(dir.resolve("cpu_latency.svg"));
    }

    private static final String E2E_HEADER = "mode,prompt_len,gen_len,chunk_len,batch_size,ttft_ms,prefill_ms,decode_ms,decode_tok_s\n";

    private static Path file(Path dir, String name, String text) throws IOException {
        return Files.writeString(dir.resolve(name), text);
    }

    private static void assertKinds(Map<Path, Charts.Kind> kinds) {
        kinds.forEach((file, kind) -> assertEquals(kind, Charts.Kind.detect(ResultFile.read(file)), file.toString()));
    }

    /** Plots each of {@code inputs} on its own; {@code charts} are the PNG and SVG files that must come out in {@code dir}. */
    private static void assertPlots(Path dir, List<Path> inputs, List<String> charts) throws Exception {
        for (Path f : inputs) {
            Run run = ember("plot", f.toString());
            assertEquals(0, run.exitCode(), run.err());
        }
        for (String chart : charts) {
            assertPng(dir.resolve(chart + ".png"));
            assertSvg(dir.resolve(chart + ".svg"));
        }
    }

    @Test
    void plotDrawsThroughputStagesAndEnergy(@TempDir Path dir) throws Exception {
        // Inputs for the drawing code in the benchmarks' layouts (e2e, stage breakdown, a _gpu.json), not measurements.
        Path e2e = file(dir, "e2e.csv", E2E_HEADER + "single,128,64,128,1,10,10,500,128\nsingle,128,64,128,4,12,40,520,490\n"
                + "single,128,64,128,16,20,160,600,1700\n");
        Path stage = file(dir, "stage.csv", "phase,mode,gpus,split,prompt_len,decode_steps,chunk_len,overlap,decode_sampling,wall_ms,"
                + "embedding_ms,rmsnorm_ms,attention_ms,ffn_ms,p2p_ms,memcpy_h2d_ms,memcpy_d2h_ms,sampling_ms,lm_head_ms,profile_total_ms\n"
                + "prefill,single,0,,512,16,512,0,1,40,0.1,1,12,20,,0.2,0.1,,3,36.4\n"
                + "decode_per_token,single,0,,512,16,512,0,1,7,0.01,0.2,1.5,4,,0.05,0.02,0.1,0.6,6.48\n");
        Path gpu = file(dir, "run_gpu.json", "{\"header\":{},\"results\":[{\"prompt_len\":128,\"energy_per_output_token_j\":0.5},"
                + "{\"prompt_len\":512,\"energy_per_output_token_j\":0.8}],\"gpu\":{\"available\":true}}");
        assertKinds(Map.of(e2e, Charts.Kind.THROUGHPUT, stage, Charts.Kind.STAGES, gpu, Charts.Kind.ENERGY));
        assertPlots(dir, List.of(e2e, stage, gpu), List.of("e2e_throughput", "stage_stages_prefill", "stage_stages_decode_per_token",
                "run_gpu_energy"));
        Run wrong = ember("plot", e2e.toString(), "--kind", "pie");
        assertEquals(1, wrong.exitCode());
        assertTrue(wrong.err().contains("unknown chart kind \"pie\""), wrong.err());
    }

    @Test
    void aSinglePointIsDrawnAsBarsAndAFileNoChartFitsIsSaidWithItsColumns(@TempDir Path dir) throws Exception {
        // One e2e run (one prompt length, one batch size) and a bench offline result, in their layouts: not measurements.
        Path e2e = file(dir, "e2e.csv", E2E_HEADER + "single,128,128,512,1,64.1,64.1,395.3,321.3\n");
        Path offline = file(dir, "offline.csv", "model,device,num_requests,input_tokens,output_tokens,runs,seconds,seconds_min,"
                + "seconds_max,output_tok_s,input_tok_s,steps,preemptions,floor_s\nember-tiny,cpu,16,2492,2019,3,4.99,4.47,5.88,"
                + "404.4,499.1,244,0,1.9\n");
        assertKinds(Map.of(e2e, Charts.Kind.BARS, offline, Charts.Kind.BARS));
        assertPlots(dir, List.of(e2e, offline), List.of("e2e_bars_throughput", "e2e_bars_latency", "offline_bars_throughput"));
        assertTrue(Files.readString(dir.resolve("e2e_bars_latency.svg")).contains("64.1"), "each bar is labelled with its value");
        Run asLine = ember("plot", e2e.toString(), "--kind", "latency", "--out-prefix", "line");
        assertEquals(0, asLine.exitCode(), asLine.err());
        assertPng(dir.resolve("line_bars_latency.png"));

        Path none = file(dir, "host.csv", "batch_size,steps,host_us_per_step\n64,500,12.0\n256,500,29.3\n");
        Run run = ember("plot", none.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("no chart fits the columns of " + none + " (its numeric columns: batch_size, steps, host_us_per_step); "
                + "each kind needs: latency: prompt_len"), run.err());
    }

    /** --kind stages on a file without a phase column draws nothing: that is an error, not a silent success. */
    @Test
    void stagesOfAFileWithoutPhasesIsAnError(@TempDir Path dir) {
        Run run = ember("plot", A.toString(), "--kind", "stages", "--out-dir", dir.toString());
        GenerateCommandTest.assertOneLineError(run, "no rows with a phase");
        assertEquals("", run.out());
    }

    @Test
    void benchInferRunsAreDrawnAsDecodeRatesPerModeAgainstBatchSize(@TempDir Path dir) throws Exception {
        // bench infer's JSON of the H200 check (docs/results/2026-12-04-h200-check): full, preload, stream and mixed
        // at batch 1, preload at 8 and 64, stream at 64.
        List<String> runs = List.of("full-b1", "preload-b1", "preload-b8", "preload-b64", "stream-b1", "stream-b64", "mixed-b1");
        List<String> files = runs.stream().map(r -> SAMPLES.resolve("infer-h200").resolve(r + ".json").toString()).toList();
        ResultFile preload64 = ResultFile.read(Path.of(files.get(3)));
        assertEquals(List.of(preload64.rows().getFirst()), preload64.rows(), "one run, one row");
        assertEquals(1820.6655270629794, preload64.value(preload64.rows().getFirst(), "streaming.bound_tok_s"),
                "nested fields are columns named by their path");
        files.forEach(f -> assertEquals(Charts.Kind.MODES, Charts.Kind.detect(ResultFile.read(Path.of(f))), f));

        List<String> args = new java.util.ArrayList<>(List.of("plot", "--out-dir", dir.toString(), "--out-prefix", "infer"));
        args.addAll(files);
        Run run = ember(args.toArray(String[]::new));
        assertEquals(0, run.exitCode(), run.err());
        assertPng(dir.resolve("infer_modes.png"));
        assertSvg(dir.resolve("infer_modes.svg"));
        var chart = Charts.modes(files.stream().map(f -> ResultFile.read(Path.of(f))).toList());
        assertEquals(List.of("full", "preload", "preload: streaming bound", "stream", "stream: streaming bound", "mixed",
                "mixed: streaming bound"), chart.getSeriesCollection().stream().map(XYSeries::getName).toList(), "full streams nothing, so it has no bound");
        assertArrayEquals(new double[] {1, 8, 64}, chart.getSeries("preload").getXData());
        assertEquals(chart.getSeries("preload").getLineColor(), chart.getSeries("preload: streaming bound").getLineColor());
    }

    @Test
    void reportRunsEveryBenchCommandAndWritesTablesChartsAndCommands(@TempDir Path dir) throws Exception {
        Run run = ember("report", "--backend", "cpu", "--threads", "2", "--out", dir.toString(), "--quick", "--monitor");
        assertEquals(0, run.exitCode(), run.err());
        String md = Files.readString(dir.resolve("report.md"));
        assertTrue(md.contains("## Hardware"));
        assertTrue(md.contains("| backend device | cpu"), md);
        for (var bench : new picocli.CommandLine(new dev.ember.bench.BenchCommand()).getSubcommands().entrySet()) {
            String name = bench.getKey();
            if (bench.getValue().getCommand() instanceof dev.ember.bench.ReportedBenchmark) {
                assertTrue(md.contains("## ember bench " + name), name + " missing from the report");
            }
        }
        assertTrue(md.contains("```sh\nember bench latency --model"), md);
        ResultFile latency = ResultFile.read(dir.resolve("bench_latency.csv"));
        assertTrue(md.contains("| " + String.join(" | ", latency.columns()) + " |"), "the latency table");
        assertTrue(md.contains("![bench_latency_latency.png](bench_latency_latency.png)"));
        assertPng(dir.resolve("bench_latency_latency.png"));
        assertSvg(dir.resolve("bench_latency_latency.svg"));
        assertTrue(md.contains("no NVML: ") || md.contains("GPU monitor on "), md);
        assertTrue(md.contains("## Pipeline bubble model (seed 000)"), "the bubble model from bench phase's layer times");
        ResultFile bubble = ResultFile.read(dir.resolve("pipeline_bubble.csv"));
        assertFalse(bubble.rows().isEmpty());
        for (var row : bubble.rows()) {
            double overlapped = bubble.value(row, "overlapped_utilisation"), sequential = bubble.value(row, "sequential_utilisation");
            assertTrue(overlapped > 0 && overlapped <= 1 && sequential <= overlapped + 1e-12, row.toString());
        }
    }
}
