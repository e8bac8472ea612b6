package dev.ember.backend.streaming;

import dev.ember.model.Model;

import java.lang.foreign.MemorySegment;

/** Packs groups from the model's tensors: slices of the mapped files, read through the page cache. */
public record MappedGroupReader(Model model, GroupLayout layout) implements GroupReader {
    @Override
    public void read(WeightGroup group, long from, MemorySegment out) {
        layout.pack(model.layers().get(group.layer()), group.kind(), from, out);
    }

    @Override
    public String describe() {
        return "the mapped files (page cache)";
    }
}
