package dev.ember.backend.streaming;

import dev.ember.EmberException;
import dev.ember.model.DType;
import dev.ember.model.Model;
import dev.ember.model.ModelLoader;
import dev.ember.model.SafeTensorsFile;
import dev.ember.model.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Reads groups from the model's safetensors files with {@code pread}, with direct I/O where the file system allows
 * (one line on {@code log} where it does not), so that the disk, not the page cache, feeds the staging ring. Pieces
 * stored in another type than the layout's (a bf16 norm that the layout keeps in fp32; a few kilobytes a layer) are
 * converted from the mapping instead.
 */
public final class DirectGroupReader implements GroupReader {
    /** The alignment of the buffers {@link #stage} reads into: direct reads land on block boundaries. */
    public static final long ALIGNMENT = DirectFile.ALIGNMENT;

    private record Location(DirectFile file, long offset) {
    }

    private final Model model;
    private final GroupLayout layout;
    private final List<DirectFile> files = new ArrayList<>();
    private final Map<String, Location> locations = new HashMap<>();

    /** A reader of {@code model}'s files (it must have been loaded from a directory) for reads of up to {@code largestRead} bytes. */
    public DirectGroupReader(Model model, GroupLayout layout, long largestRead, Consumer<String> log) {
        if (model.directory() == null) {
            throw new EmberException("reading weights from the disk needs a model loaded from safetensors files, not one made in memory");
        }
        this.model = model;
        this.layout = layout;
        Map<String, DType> types = new HashMap<>();
        model.tensors().forEach(t -> types.put(t.name(), t.dtype()));
        try (Arena scan = Arena.ofConfined()) {
            for (Path path : ModelLoader.tensorFiles(model.directory())) {
                SafeTensorsFile mapped = SafeTensorsFile.map(path, scan);
                DirectFile file = new DirectFile(path, largestRead);
                files.add(file);
                if (!file.direct()) {
                    log.accept("ember: " + path + ": direct I/O refused (" + file.whyNotDirect() + "); reading through the page cache");
                }
                for (Tensor t : mapped.tensors().values()) {
                    // A tensor the model holds in another type than the file (converted by --dtype) is written from
                    // the model's memory, as a converted piece is: the file's bytes are not its elements.
                    if (t.dtype() == types.get(t.name())) {
                        locations.put(t.name(), new Location(file, mapped.fileOffset(t)));
                    }
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override
    public void read(WeightGroup group, long from, MemorySegment out) {
        for (GroupLayout.Piece p : layout.pieces(model.layers().get(group.layer()), group.kind(), from, out.byteSize())) {
            MemorySegment target = out.asSlice(p.offset() - from, p.count() * p.type().bytes());
            Location at = p.raw() ? locations.get(p.tensor().name()) : null;
            if (at == null) {
                p.writeTo(target);
            } else {
                at.file().read(at.offset() + p.first() * p.type().bytes(), target);
            }
        }
    }

    /**
     * Reads each raw piece straight from its file into {@code buffer}, at the next block boundary (so that no byte is
     * copied twice on the host); converted pieces are written from the mapping.
     */
    @Override
    public List<Placement> stage(WeightGroup group, long from, long length, MemorySegment buffer) {
        List<Placement> placements = new ArrayList<>();
        long at = 0;
        for (GroupLayout.Piece p : layout.pieces(model.layers().get(group.layer()), group.kind(), from, length)) {
            long bytes = p.count() * p.type().bytes();
            Location location = p.raw() ? locations.get(p.tensor().name()) : null;
            long placed;
            if (location == null) {
                placed = at;
                p.writeTo(buffer.asSlice(at, bytes));
            } else {
                placed = location.file().readInto(location.offset() + p.first() * p.type().bytes(), bytes, buffer, at);
            }
            placements.add(new Placement(placed, p.offset(), bytes));
            at = DirectFile.align(placed + bytes);
        }
        return placements;
    }

    /** Whether every file is read with direct I/O. */
    public boolean direct() {
        return files.stream().allMatch(DirectFile::direct);
    }

    @Override
    public String describe() {
        return direct() ? "the disk (direct I/O)" : "the disk through the page cache (direct I/O refused)";
    }

    @Override
    public void close() {
        files.forEach(DirectFile::close);
    }
}
