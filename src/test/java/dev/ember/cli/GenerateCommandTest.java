package dev.ember.cli;

import dev.ember.app.EmberCli;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@code ember generate} as a user runs it: exit codes, the streamed text, the summary line and one-line errors. */
public class GenerateCommandTest {
    static final Path MODEL = Path.of("models", "ember-tiny");

    /** What one {@code ember} command line did; other packages' CLI tests use it too. */
    public record Run(int exitCode, String out, String err) {
    }

    public static synchronized Run ember(String... args) {
        PrintStream savedOut = System.out;
        PrintStream savedErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = EmberCli.execute(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(savedOut);
            System.setErr(savedErr);
        }
    }

    @Test
    void greedyGenerationOnTheDefaultModelStreamsTextAndEndsWithASummary() {
        Run run = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2",
                "--prompt", "And the LORD said unto Moses,", "--temperature", "0", "--max-tokens", "12", "--ignore-eos");
        assertEquals(0, run.exitCode(), run.err());
        // The trained model's greedy continuation (the same as HF transformers', see DefaultModelTest).
        assertTrue(run.out().startsWith(" Behold, I will not go to the house of Israel"), run.out());
        assertTrue(run.err().matches("(?s).*prompt tokens: 8, generated tokens: 12 \\(length\\), TTFT: [0-9.]+ ms \\(with the "
                + "JVM's warm-up\\), decode: [0-9.]+ tokens/s, backend: cpu.*, sampling: greedy \\(--temperature; the rest "
                + "from the model's generation_config.json\\)\n"), run.err());
    }

    /** llama.cpp's short names (-m, -p, -n, -t, -s, --temp, --repeat-penalty) give what the long ones give. */
    @Test
    void llamaCppsShortNamesAreTheLongOnes() {
        Run longForm = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--prompt",
                "A friend in need", "--max-tokens", "10", "--temperature", "0.8", "--seed", "5", "--repetition-penalty", "1.1",
                "--ignore-eos");
        Run shortForm = ember("generate", "-m", MODEL.toString(), "--backend", "cpu", "-t", "2", "-p", "A friend in need",
                "-n", "10", "--temp", "0.8", "-s", "5", "--repeat-penalty", "1.1", "--ignore-eos");
        assertEquals(0, shortForm.exitCode(), shortForm.err());
        assertEquals(longForm.out(), shortForm.out());
    }

    /** vLLM's --download-dir and --revision: a Hub id (and a draft's) found in the cache folder given, at the revision asked. */
    @Test
    void aHubIdIsFoundInTheDownloadDirAtItsRevision(@TempDir Path root) throws IOException {
        Path snapshot = root.resolve("models--acme--tiny/snapshots/abc123");
        Files.createDirectories(snapshot);
        copyModel(snapshot);
        Files.createDirectories(root.resolve("models--acme--tiny/refs"));
        Files.writeString(root.resolve("models--acme--tiny/refs/main"), "abc123");
        String[] args = {"generate", "--model", "acme/tiny", "--download-dir", root.toString(), "--backend", "cpu", "--threads",
                "2", "--prompt", "And the LORD said unto Moses,", "--temperature", "0", "--max-tokens", "8", "--ignore-eos"};
        Run run = ember(args);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().startsWith(" Behold, I will not go"), run.out());
        assertEquals(run.out(), ember(concat(args, new String[] {"--revision", "abc123"})).out());
        assertOneLineError(ember(concat(args, new String[] {"--revision", "v2"})), "revision v2 of acme/tiny is not in");
        String[] absent = args.clone();
        absent[2] = "acme/absent";
        assertOneLineError(ember(absent), "nor is acme/absent in the Hugging Face cache (" + root + ")");
        // A draft named by its Hub id is found in the same folder (at its own main revision, as vLLM finds a draft).
        Path draft = root.resolve("models--acme--tiny-draft/snapshots/def456");
        Files.createDirectories(draft);
        try (var files = Files.list(Path.of("models", "ember-tiny-draft"))) {
            for (Path f : files.toList()) {
                Files.copy(f, draft.resolve(f.getFileName()));
            }
        }
        Run speculated = ember(concat(args, new String[] {"--speculative-model", "acme/tiny-draft", "--revision", "abc123"}));
        assertEquals(0, speculated.exitCode(), speculated.err());
        assertEquals(run.out(), speculated.out(), "greedy speculation writes the target's text");
    }

    /**
     * {@code --dtype}: float32 widens the stored bf16 exactly, so the CPU (which computes in fp32) writes the same text;
     * float16 converts as the model loads and still writes the model's text for this prompt; streamed (mixed: layers
     * read from the disk), the converted weights are copied from memory, not reread from the files.
     */
    @Test
    void dtypeConvertsTheWeightsAsTheModelLoads() {
        String[] args = {"generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2",
                "--prompt", "And the LORD said unto Moses,", "--temperature", "0", "--max-tokens", "12", "--ignore-eos"};
        Run stored = ember(args);
        Run widened = ember(concat(args, new String[] {"--dtype", "float32"}));
        Run half = ember(concat(args, new String[] {"--dtype", "half"}));
        assertEquals(0, widened.exitCode(), widened.err());
        assertEquals(stored.out(), widened.out());
        assertEquals(0, half.exitCode(), half.err());
        assertTrue(half.out().startsWith(" Behold, I will not go"), half.out());
        assertTrue(half.err().contains(", weights in f16 (--dtype), sampling: "), half.err());
        Run streamed = ember(concat(args, new String[] {"--dtype", "float32", "--weight-mode", "mixed", "--gpu-cached-layers", "2",
                "--cpu-cache-layers", "2"}));
        assertEquals(0, streamed.exitCode(), streamed.err());
        assertEquals(stored.out(), streamed.out(), "streamed, the converted weights come from memory, not the files' bf16");
        assertOneLineError(ember(concat(args, new String[] {"--dtype", "int4"})), "--dtype int4 is not one of");
    }

    /**
     * Split over two tensor-parallel ranks or over pipeline stages (threads on the CPU), the default model writes what
     * one runner writes.
     */
    @Test
    void splitModelsWriteWhatOneRunnerWrites() {
        String[] args = {"generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2",
                "--prompt", "And the LORD said unto Moses,", "--max-tokens", "24", "--ignore-eos"};
        Run one = ember(args), two = ember(concat(args, new String[] {"--tensor-parallel-size", "2"}));
        assertEquals(0, two.exitCode(), two.err());
        assertEquals(one.out(), two.out());
        assertTrue(two.err().contains("tensor parallel 2"), two.err());
        Run stages = ember(concat(args, new String[] {"--split", "2,5"}));
        assertEquals(0, stages.exitCode(), stages.err());
        assertEquals(one.out(), stages.out());
        assertTrue(stages.err().contains("pipeline parallel [2,5]"), stages.err());
        assertOneLineError(ember(concat(args, new String[] {"--split", "3,3"})), "--split 3,3 covers 6 layers; the model has 7");
        assertOneLineError(ember(concat(args, new String[] {"-pp", "2", "-tp", "2"})), "together are not supported yet");
        assertOneLineError(ember(concat(args, new String[] {"-tp", "3"})), "a tensor-parallel size of 3 must divide the "
                + "model's 4 KV heads and its intermediate size of 768");
        assertOneLineError(ember(concat(args, new String[] {"-tp", "2", "--weight-mode", "stream"})), "streams none");
    }

    @Test
    void samplingDefaultsComeFromTheModelsGenerationConfig(@TempDir Path dir) throws IOException {
        // ember-tiny's generation_config.json says do_sample: false, so without options the output is greedy.
        String[] args = {"generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--prompt", "A friend",
                "--max-tokens", "6", "--ignore-eos"};
        Run first = ember(args);
        assertEquals(0, first.exitCode(), first.err());
        assertEquals(first.out(), ember(args).out(), "greedy output does not change from run to run");
        assertTrue(first.err().contains("sampling: greedy (the model's generation_config.json)"), first.err());

        copyModel(dir);
        Files.writeString(dir.resolve("generation_config.json"),
                "{\"do_sample\": true, \"temperature\": 0.7, \"top_k\": 5, \"repetition_penalty\": 1.1}");
        Run sampled = ember("generate", "--model", dir.toString(), "--backend", "cpu", "--threads", "2", "--prompt", "A friend",
                "--max-tokens", "4", "--top-p", "0.9", "--seed", "7");
        assertEquals(0, sampled.exitCode(), sampled.err());
        assertTrue(sampled.err().contains("sampling: temperature 0.7, top-k 5, top-p 0.9, repetition penalty 1.1, seed 7 "
                + "(--top-p, --seed; the rest from the model's generation_config.json)"), sampled.err());

        Files.delete(dir.resolve("generation_config.json"));
        Run none = ember("generate", "--model", dir.toString(), "--backend", "cpu", "--threads", "2", "--prompt", "A friend",
                "--max-tokens", "2", "--top-k", "3");
        assertEquals(0, none.exitCode(), none.err());
        assertTrue(none.err().contains("--top-k has no effect when decoding is greedy (the model has no generation_config.json)"),
                none.err());
        assertTrue(none.err().contains("sampling: greedy (transformers' defaults: the model has no generation_config.json)"),
                none.err());
    }

    @Test
    void aPromptThatFillsTheContextSaysSo() {
        Run run = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--prompt",
                "and the ".repeat(1015), "--max-tokens", "20", "--ignore-eos");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().matches("(?s).*ember: warning: the prompt's 20\\d\\d tokens leave room for \\d+ of the 20 new "
                + "tokens asked for \\(the model's context is 2048 tokens\\).*"), run.err());
        assertTrue(run.err().contains("(length: the context is full)"), run.err());
    }

    @Test
    void systemWithoutChatAndChatWithoutATemplateAreSaid() {
        assertOneLineError(ember("generate", "--model", MODEL.toString(), "--prompt", "hi", "--system", "Be brief."), "--chat");
        Run chat = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--chat",
                "--prompt", "Who is wise?", "--max-tokens", "2");
        assertEquals(0, chat.exitCode(), chat.err());
        assertTrue(chat.err().contains("has no chat template"), chat.err());
    }

    @Test
    void aBadOptionValueIsOneLineThatPointsToTheUsage() {
        Run run = ember("generate", "--prompt", "hi", "--temperature", "abc");
        assertEquals(2, run.exitCode(), run.err());
        assertEquals(List.of("ember: error: Invalid value for option '--temperature': 'abc' is not a float "
                + "(see `ember generate --help`)"), run.err().lines().toList());
        Run typo = ember("genrate");
        assertEquals(1, typo.err().lines().count(), typo.err());
        assertTrue(typo.err().contains("did you mean generate"), typo.err());
    }

    @Test
    void aModelFileInsteadOfItsDirectoryIsSaid() {
        assertOneLineError(ember("generate", "--model", MODEL.resolve("config.json").toString(), "--prompt", "hi"),
                "takes a model directory");
    }

    @Test
    void aConfigWithBadJsonIsOneLineNamingTheFileAndThePlace(@TempDir Path dir) throws IOException {
        copyModel(dir);
        Files.writeString(dir.resolve("config.json"), "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"hidden_size\": 256,,\n}\n");
        Run run = ember("generate", "--model", dir.toString(), "--backend", "cpu", "--prompt", "hi");
        assertOneLineError(run, dir.resolve("config.json") + ": not valid JSON at line 3");
        assertEquals(1, run.err().lines().filter(l -> !l.startsWith("ember: no GPU")).count(), run.err());
    }

    @Test
    void theSameSeedGivesTheSameSample() {
        String[] args = {"generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--prompt", "A friend",
                "--temperature", "1.0", "--seed", "42", "--max-tokens", "16"};
        Run first = ember(args);
        Run second = ember(args);
        assertEquals(0, first.exitCode(), first.err());
        assertFalse(first.out().isBlank());
        assertEquals(first.out(), second.out());
    }

    /** --json-schema holds a sampled output to the schema, given inline or as a file; a bad schema is one line. */
    @Test
    void aJsonSchemaHoldsTheOutput(@TempDir Path dir) throws IOException {
        String schema = "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"maxLength\": 12}, "
                + "\"people\": {\"type\": \"integer\"}}, \"required\": [\"city\", \"people\"]}";
        Path file = Files.writeString(dir.resolve("schema.json"), schema);
        for (String given : new String[] {schema, file.toString()}) {
            Run run = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--prompt",
                    "A town:", "--temperature", "1", "--seed", "11", "-n", "200", "--json-schema", given);
            assertEquals(0, run.exitCode(), run.err());
            var value = new com.fasterxml.jackson.databind.ObjectMapper().readTree(run.out().strip());
            assertTrue(value.get("city").isTextual() && value.get("people").isIntegralNumber(), run.out());
            assertTrue(run.err().contains("held to a JSON schema") && run.err().contains("(stop)"), run.err());
        }
        assertOneLineError(ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--prompt", "x",
                "--json-schema", "{\"type\": \"string\", \"format\": \"iri\"}"), "the format \"iri\"");
        assertOneLineError(ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--prompt", "x",
                "--json-schema", "no-such-file.json"), "neither a JSON schema nor a file");
    }

    /** --grammar holds a sampled output to a GBNF grammar, given inline or as a file; a bad grammar is one line. */
    @Test
    void aGbnfGrammarHoldsTheOutput(@TempDir Path dir) throws IOException {
        String grammar = "root ::= \"Day \" [1-9] [0-9]? \": \" (\"rain\" | \"sun\" | \"snow\")\n";
        Path file = Files.writeString(dir.resolve("weather.gbnf"), grammar);
        for (String given : new String[] {grammar, file.toString()}) {
            Run run = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--prompt",
                    "The weather:", "--temperature", "1", "--seed", "4", "-n", "40", "--grammar", given);
            assertEquals(0, run.exitCode(), run.err());
            assertTrue(run.out().strip().matches("Day [1-9][0-9]?: (rain|sun|snow)"), run.out());
            assertTrue(run.err().contains("held to a grammar") && run.err().contains("(stop)"), run.err());
        }
        assertOneLineError(ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--prompt", "x",
                "--grammar", "root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\""), "the rule expr can reach itself");
        assertOneLineError(ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--prompt", "x",
                "--grammar", "root ::= \"a\"", "--json-object"), "give one");
    }

    /** --max-model-len caps a sequence below the model's context, as vLLM's option does; above it is refused. */
    @Test
    void maxModelLenCapsTheContext() {
        Run run = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--prompt", "A friend",
                "--max-model-len", "12", "-n", "100", "--ignore-eos");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("(the model's context is 12 tokens)"), run.err());
        assertTrue(run.err().contains("generated tokens: " + (12 - run.err().replaceAll("(?s).*prompt tokens: (\\d+).*", "$1")
                .transform(Integer::parseInt))), run.err());
        assertOneLineError(ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--prompt", "x",
                "--max-model-len", "99999999"), "--max-model-len 99999999 must be between 1 and the model's context");
    }

    /** `ember serve DIR` takes its model as `vllm serve MODEL` does; named twice, differently, it says so and stops. */
    @Test
    void serveTakesItsModelAsAnArgumentToo() {
        assertOneLineError(ember("serve", MODEL.toString(), "--model", "models/ember-tiny-draft", "--port", "0"),
                "the model is given twice");
    }

    @Test
    void helpListsEveryCommand() {
        Run run = ember("--help");
        assertEquals(0, run.exitCode());
        assertTrue(run.out().contains("generate"), run.out());
        assertTrue(run.out().contains("serve"), run.out());
    }

    @Test
    void aMissingModelDirectoryIsOneLineNamingIt() {
        Run run = ember("generate", "--model", "/no/such/model", "--prompt", "hi");
        assertOneLineError(run, "/no/such/model");
    }

    @Test
    void aTruncatedTensorFileNamesTheFile(@TempDir Path dir) throws IOException {
        copyModel(dir);
        try (var channel = Files.newByteChannel(dir.resolve("model.safetensors"), StandardOpenOption.WRITE)) {
            channel.truncate(channel.size() / 2);
        }
        Run run = ember("generate", "--model", dir.toString(), "--backend", "cpu", "--prompt", "hi");
        assertOneLineError(run, "model.safetensors");
    }

    @Test
    void anUnknownArchitectureIsNamed(@TempDir Path dir) throws IOException {
        copyModel(dir);
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("LlamaForCausalLM", "GPTNeoXForCausalLM"));
        Run run = ember("generate", "--model", dir.toString(), "--backend", "cpu", "--prompt", "hi");
        assertOneLineError(run, "GPTNeoXForCausalLM");
    }

    @Test
    void aPromptLongerThanTheContextNamesTheLimit() {
        Run run = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--prompt", "and the ".repeat(1200));
        assertOneLineError(run, "2048");
    }

    @Test
    void aThreadCountBelowOneIsNamed() {
        for (String threads : List.of("0", "-2")) {
            Run run = ember("generate", "--model", MODEL.toString(), "--backend", "cpu", "--threads", threads, "--prompt", "hi");
            assertOneLineError(run, "--threads must be at least 1, not " + threads);
        }
    }

    @Test
    void anUnknownBackendIsNamed() {
        Run run = ember("generate", "--model", MODEL.toString(), "--backend", "tpu", "--prompt", "hi");
        assertOneLineError(run, "tpu");
    }

    @Test
    void aPromptsFileRunsAsOneBatchWithTheSameGreedyTextAsSinglePrompts(@TempDir Path dir) throws IOException {
        List<String> prompts = List.of("And the LORD said unto Moses,", "A friend", "The king of Israel");
        Path file = dir.resolve("prompts.txt");
        Files.writeString(file, String.join("\n\n", prompts) + "\n");
        String[] common = {"--model", MODEL.toString(), "--backend", "cpu", "--threads", "2", "--temperature", "0",
                "--max-tokens", "10", "--ignore-eos", "--kv-cache-gb", "0.05"};
        Run batch = ember(concat(new String[] {"generate", "--prompts-file", file.toString()}, common));
        assertEquals(0, batch.exitCode(), batch.err());
        for (int i = 0; i < prompts.size(); i++) {
            Run single = ember(concat(new String[] {"generate", "--prompt", prompts.get(i)}, common));
            String header = "--- request " + (i + 1) + ": ";
            String result = batch.out().substring(batch.out().indexOf(header));
            int next = result.indexOf("\n--- request ");
            result = next < 0 ? result : result.substring(0, next);
            String text = result.substring(result.indexOf('\n') + 1);
            assertTrue(result.lines().findFirst().orElseThrow().contains("10 generated (length)"), result);
            assertEquals(single.out().strip(), text.strip(), "prompt " + prompts.get(i));
        }
        assertTrue(batch.err().matches("(?s).*requests: 3 \\(0 failed\\), prompt tokens: \\d+, generated tokens: 30, "
                + "wall time: [0-9.]+ s, throughput: [0-9.]+ generated tokens/s.*"), batch.err());
    }

    @Test
    void aJsonLinesPromptThatCannotFitFailsAloneAndABadLineIsNamed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("prompts.jsonl");
        Files.writeString(file, "{\"prompt\": \"A friend\"}\n{\"prompt\": \"" + "and the ".repeat(1200) + "\"}\n");
        Run run = ember("generate", "--prompts-file", file.toString(), "--model", MODEL.toString(), "--backend", "cpu",
                "--threads", "2", "--max-tokens", "4", "--kv-cache-gb", "0.05");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.out().contains("--- request 1: "), run.out());
        assertTrue(run.out().matches("(?s).*--- request 2: error: .*2048.*"), run.out());
        assertTrue(run.err().contains("requests: 2 (1 failed)"), run.err());

        Files.writeString(file, "{\"prompt\": \"A friend\"}\n{\"text\": \"hi\"}\n");
        assertOneLineError(ember("generate", "--prompts-file", file.toString(), "--model", MODEL.toString()), file + ":2");
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    public static void assertOneLineError(Run run, String mentioned) {
        assertEquals(1, run.exitCode(), run.err());
        String error = run.err().lines().filter(l -> l.startsWith("ember: error: ")).findFirst().orElse("");
        assertTrue(error.contains(mentioned), "no \"ember: error:\" line naming " + mentioned + " in:\n" + run.err());
        assertFalse(run.err().contains("\tat "), "a stack trace was printed:\n" + run.err());
    }

    static void copyModel(Path to) throws IOException {
        try (var files = Files.list(MODEL)) {
            for (Path f : files.toList()) {
                Files.copy(f, to.resolve(f.getFileName()));
            }
        }
    }
}
