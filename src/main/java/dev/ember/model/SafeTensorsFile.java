package dev.ember.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ember.EmberException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code .safetensors} file, memory-mapped: an 8-byte little-endian header length, a JSON header
 * naming each tensor's dtype, shape and byte range, then the raw data. Tensors are slices of the mapping.
 */
public final class SafeTensorsFile {
    private static final long MAX_HEADER_BYTES = 100L << 20;

    private final Path path;
    private final MemorySegment file;
    private final Map<String, Tensor> tensors;

    private SafeTensorsFile(Path path, MemorySegment file, Map<String, Tensor> tensors) {
        this.path = path;
        this.file = file;
        this.tensors = tensors;
    }

    /** Where {@code tensor}'s bytes start in the file: for reading them without the mapping (direct I/O). */
    public long fileOffset(Tensor tensor) {
        long offset = tensor.data().address() - file.address();
        if (offset < 0 || offset + tensor.byteSize() > file.byteSize()) {
            throw new IllegalArgumentException(tensor + " is not in " + path);
        }
        return offset;
    }

    public Path path() {
        return path;
    }

    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** Maps {@code path} into {@code arena}; the tensors stay valid until the arena is closed. */
    public static SafeTensorsFile map(Path path, Arena arena) {
        MemorySegment file;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            file = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        } catch (IOException e) {
            throw new EmberException(path + ": cannot open tensor file (" + e + ")", e);
        }
        if (file.byteSize() < 8) {
            throw new EmberException(path + ": truncated safetensors file (" + file.byteSize() + " bytes, no header)");
        }
        long headerLen = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > file.byteSize()) {
            throw new EmberException(path + ": corrupt or truncated safetensors header (header length " + headerLen
                    + ", file size " + file.byteSize() + ")");
        }
        byte[] headerBytes = file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        JsonNode header;
        try {
            header = new ObjectMapper().readTree(new String(headerBytes, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new EmberException(path + ": corrupt safetensors header (" + e.getMessage() + ")", e);
        }
        if (header == null || !header.isObject()) {
            throw new EmberException(path + ": corrupt safetensors header (not a JSON object)");
        }
        long dataStart = 8 + headerLen;
        long dataSize = file.byteSize() - dataStart;
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, long[]> ranges = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : header.properties()) {
            String name = e.getKey();
            if (name.equals("__metadata__")) {
                continue;
            }
            JsonNode info = e.getValue();
            String where = path.getFileName() + ": tensor " + name;
            DType dtype = DType.fromSafetensors(info.path("dtype").asText(), where);
            JsonNode shapeNode = info.path("shape");
            JsonNode offsets = info.path("data_offsets");
            if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
                throw new EmberException(where + ": malformed header entry");
            }
            long[] shape = new long[shapeNode.size()];
            long count = 1;
            for (int i = 0; i < shape.length; i++) {
                JsonNode dim = shapeNode.get(i);
                if (!dim.isIntegralNumber() || !dim.canConvertToLong() || dim.asLong() < 0) {
                    throw new EmberException(where + ": malformed header entry (shape " + shapeNode + ")");
                }
                shape[i] = dim.asLong();
                try {
                    count = Math.multiplyExact(count, shape[i]);
                } catch (ArithmeticException overflow) {
                    throw new EmberException(where + ": malformed header entry (shape " + shapeNode + " overflows)");
                }
            }
            if (!offsets.get(0).isIntegralNumber() || !offsets.get(1).isIntegralNumber()) {
                throw new EmberException(where + ": malformed header entry (data_offsets " + offsets + ")");
            }
            long begin = offsets.get(0).asLong();
            long end = offsets.get(1).asLong();
            if (begin < 0 || end < begin || count > (Long.MAX_VALUE / dtype.bytes()) || end - begin != count * dtype.bytes()) {
                throw new EmberException(where + ": byte range [" + begin + ", " + end + ") does not hold "
                        + count + " " + dtype + " elements");
            }
            if (end > dataSize) {
                throw new EmberException(path + ": truncated: tensor " + name + " ends at byte " + (dataStart + end)
                        + " but the file has " + file.byteSize() + " bytes");
            }
            tensors.put(name, new Tensor(name, dtype, shape, file.asSlice(dataStart + begin, end - begin)));
            ranges.put(name, new long[] {begin, end});
        }
        // As the reference reader (safetensors' validate) checks: no two tensors share bytes; else one's weights would
        // silently be the other's.
        List<Map.Entry<String, long[]>> byStart = ranges.entrySet().stream().filter(r -> r.getValue()[1] > r.getValue()[0])
                .sorted(Comparator.comparingLong(r -> r.getValue()[0])).toList();
        Map.Entry<String, long[]> furthest = null;
        for (Map.Entry<String, long[]> r : byStart) {
            if (furthest != null && r.getValue()[0] < furthest.getValue()[1]) {
                throw new EmberException(path + ": corrupt safetensors header: tensor " + r.getKey() + " (bytes ["
                        + r.getValue()[0] + ", " + r.getValue()[1] + ")) overlaps tensor " + furthest.getKey() + " (bytes ["
                        + furthest.getValue()[0] + ", " + furthest.getValue()[1] + "))");
            }
            if (furthest == null || r.getValue()[1] > furthest.getValue()[1]) {
                furthest = r;
            }
        }
        return new SafeTensorsFile(path, file, Map.copyOf(tensors));
    }
}
