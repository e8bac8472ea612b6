package dev.ember.bench.client;

import dev.ember.EmberException;
import dev.ember.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/** The client's datasets: random token ids, ShareGPT in its JSON and JSONL shapes, prompt files. */
class DatasetsTest {
    @TempDir
    Path dir;

    private static Set<String> prompts(List<ClientRequest> requests) {
        return requests.stream().map(r -> ((ClientRequest.Text) r.prompt()).text()).collect(Collectors.toSet());
    }

    @Test
    void shareGptInEveryShapeTheSeedsNameGivesItsFirstExchange() throws IOException {
        Path array = Files.writeString(dir.resolve("ShareGPT_V3.json"), """
                [{"id": "a", "conversations": [{"from": "human", "value": "What is a cat?"}, {"from": "gpt", "value": "An animal."}]},
                 {"id": "b", "conversations": [{"from": "gpt", "value": "Hello"}]},
                 {"id": "c", "conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Name a colour."},
                                               {"from": "gpt", "value": "Red."}]}]
                """);
        assertEquals(Set.of("What is a cat?", "Name a colour."), prompts(Datasets.shareGpt(array, 2, null, 7, 0)));
        assertEquals(7, Datasets.shareGpt(array, 1, null, 7, 0).getFirst().maxTokens());

        Path jsonl = Files.writeString(dir.resolve("sharegpt_gpt4.jsonl"), """
                {"conversations": [{"from": "human", "value": "p1"}, {"from": "gpt", "value": "r1"}]}
                {"messages": [{"role": "user", "content": "p2"}, {"role": "assistant", "content": "r2"}]}

                {"conversation_id": 3, "conversation": [{"human": "p3", "assistant": "r3"}]}
                """);
        assertEquals(Set.of("p1", "p2", "p3"), prompts(Datasets.shareGpt(jsonl, 3, null, 5, 1)));

        EmberException tooFew = assertThrows(EmberException.class, () -> Datasets.shareGpt(jsonl, 4, null, 5, 1));
        assertTrue(tooFew.getMessage().contains("3 usable conversations"), tooFew.getMessage());
        Path broken = Files.writeString(dir.resolve("broken.jsonl"), "{\"conversations\": []}\n{not json\n");
        EmberException bad = assertThrows(EmberException.class, () -> Datasets.shareGpt(broken, 1, null, 5, 1));
        assertTrue(bad.getMessage().contains("line 2"), bad.getMessage());
    }

    @Test
    void aShareGptDirectoryReadsTheSeedsThreeFilesInIt() throws IOException {
        // seed 001's SHAREGPT_DIR: prompts from sharegpt_gpt4.jsonl, sharegpt_V3_format.jsonl and sharegpt_zh_38K_format.jsonl
        Path sharegpt = Files.createDirectory(dir.resolve("sharegpt"));
        Files.writeString(sharegpt.resolve("sharegpt_gpt4.jsonl"),
                "{\"conversations\": [{\"from\": \"human\", \"value\": \"g1\"}, {\"from\": \"gpt\", \"value\": \"r\"}]}\n");
        Files.writeString(sharegpt.resolve("sharegpt_zh_38K_format.jsonl"),
                "{\"conversation\": [{\"human\": \"z1\", \"assistant\": \"r\"}]}\n");
        Files.writeString(sharegpt.resolve("unrelated.jsonl"),
                "{\"conversations\": [{\"from\": \"human\", \"value\": \"no\"}, {\"from\": \"gpt\", \"value\": \"r\"}]}\n");
        assertEquals(Set.of("g1", "z1"), prompts(Datasets.shareGptUpTo(sharegpt, 5, null, 4, 0)),
                "the seed's files that are there, and no other");
        Path empty = Files.createDirectory(dir.resolve("empty"));
        EmberException none = assertThrows(EmberException.class, () -> Datasets.shareGpt(empty, 1, null, 4, 0));
        assertTrue(none.getMessage().contains("sharegpt_V3_format.jsonl"), none.getMessage());
    }

    @Test
    void withATokenizerShareGptAsksForTheReplysLengthAndDropsWhatVllmDrops() throws IOException {
        String longReply = "the quick brown fox jumps over the lazy dog ".repeat(3).strip();
        Path file = Files.writeString(dir.resolve("sg.jsonl"), """
                {"conversations": [{"from": "human", "value": "Tell me about the fox and the dog."}, {"from": "gpt", "value": "%s"}]}
                {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello there, how are you today?"}]}
                """.formatted(longReply));
        try (Tokenizer tokenizer = Tokenizer.load(Path.of("models", "ember-tiny"))) {
            List<ClientRequest> requests = Datasets.shareGpt(file, 1, tokenizer, null, 0);
            assertEquals("Tell me about the fox and the dog.", ((ClientRequest.Text) requests.getFirst().prompt()).text());
            assertEquals(tokenizer.encode(longReply).length, requests.getFirst().maxTokens());
            assertThrows(EmberException.class, () -> Datasets.shareGpt(file, 2, tokenizer, null, 0),
                    "a prompt under 4 tokens is dropped");
        }
    }

    @Test
    void randomRequestsHaveTheirLengthsAndIdsOrText() {
        List<ClientRequest> fixed = Datasets.random(20, 32, 8, 0, null, 50, 0);
        for (ClientRequest r : fixed) {
            int[] ids = ((ClientRequest.TokenIds) r.prompt()).ids();
            assertEquals(32, ids.length);
            assertTrue(java.util.Arrays.stream(ids).allMatch(id -> id >= 0 && id < 50));
            assertEquals(8, r.maxTokens());
        }
        for (ClientRequest r : Datasets.random(200, 100, 10, 0.5, null, 1000, 3)) {
            int in = ((ClientRequest.TokenIds) r.prompt()).ids().length;
            assertTrue(in >= 50 && in <= 150, "input " + in);
            assertTrue(r.maxTokens() >= 5 && r.maxTokens() <= 15, "output " + r.maxTokens());
        }
        try (Tokenizer tokenizer = Tokenizer.load(Path.of("models", "ember-tiny"))) {
            ClientRequest text = Datasets.random(1, 16, 4, 0, tokenizer, 0, 0).getFirst();
            assertFalse(((ClientRequest.Text) text.prompt()).text().isEmpty());
        }
    }

    @Test
    void aPromptsFileIsReadInOrderAndCycled() throws IOException {
        Path file = Files.writeString(dir.resolve("p.txt"), "first\n  \nsecond\n");
        List<ClientRequest> r = Datasets.prompts(file, 3, 9);
        assertEquals(List.of("first", "second", "first"), r.stream().map(x -> ((ClientRequest.Text) x.prompt()).text()).toList());
        assertEquals(9, r.getFirst().maxTokens());
        assertThrows(EmberException.class, () -> Datasets.prompts(Files.writeString(dir.resolve("e.txt"), "\n"), 1, 9));
    }
}
