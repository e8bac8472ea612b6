package dev.ember.backend.streaming;

import dev.ember.Progress;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Groups read from the disk, range by range (through the file's buffer, or straight into a staging buffer piece by
 * piece), are the groups packed from the mapping, byte for byte.
 */
class GroupReaderTest {
    @Test
    void directReadsGiveThePackedGroupsBytes() {
        Path modelDir = Path.of("models/ember-tiny");  // on the repository's disk, where direct I/O is usually allowed
        List<String> notes = new ArrayList<>();
        try (Model model = ModelLoader.load(modelDir)) {
            assertReadsMatch(model, DType.BF16, notes);
        }
        assertTrue(notes.stream().allMatch(n -> n.contains("direct I/O refused")), "a note only where direct I/O is refused");
    }

    /**
     * A model converted by --dtype (the files hold bf16, the model f32): the pieces the files do not hold as the model
     * does come from the model's memory, so the reads still give the packed groups, not the files' bytes reread.
     */
    @Test
    void aConvertedModelsGroupsComeFromItsMemory() {
        try (Model model = ModelLoader.load(Path.of("models/ember-tiny")).withWeightType(DType.F32, Progress.NONE)) {
            assertReadsMatch(model, DType.F32, new ArrayList<>());
        }
    }

    private static void assertReadsMatch(Model model, DType type, List<String> notes) {
        try (Arena arena = Arena.ofConfined()) {
            GroupLayout layout = GroupLayout.of(model.config(), type);
            long range = 16384;
            try (DirectGroupReader direct = new DirectGroupReader(model, layout, range, notes::add)) {
                MappedGroupReader mapped = new MappedGroupReader(model, layout);
                for (int l = 0; l < model.config().numLayers(); l++) {
                    for (WeightGroup.Kind kind : WeightGroup.Kind.values()) {
                        WeightGroup g = new WeightGroup(l, kind);
                        long bytes = layout.bytes(kind);
                        MemorySegment whole = arena.allocate(bytes), ranged = arena.allocate(bytes);
                        mapped.read(g, 0, whole);
                        for (long from = 0; from < bytes; from += range) {
                            direct.read(g, from, ranged.asSlice(from, Math.min(range, bytes - from)));
                        }
                        assertEquals(-1, whole.mismatch(ranged), g + ": direct reads differ from the packed group");
                        MemorySegment staging = arena.allocate(range + GroupReader.STAGING_SLACK, 4096), placed = arena.allocate(bytes);
                        for (long from = 0; from < bytes; from += range) {
                            for (GroupReader.Placement p : direct.stage(g, from, Math.min(range, bytes - from), staging)) {
                                MemorySegment.copy(staging, p.bufferOffset(), placed, p.groupOffset(), p.length());
                            }
                        }
                        assertEquals(-1, whole.mismatch(placed), g + ": pieces staged in place differ from the packed group");
                        assertTrue(whole.asSlice(layout.part(kind == WeightGroup.Kind.MLP ? GroupLayout.Role.DOWN : GroupLayout.Role.O).offset(), 64)
                                .mismatch(arena.allocate(64)) >= 0, g + ": its last matrix is not zeros");
                    }
                }
            }
        }
    }
}
