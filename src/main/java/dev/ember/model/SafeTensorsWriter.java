package dev.ember.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Locale;

/** Writes tensors as one {@code .safetensors} file, the format {@link SafeTensorsFile} reads. */
public final class SafeTensorsWriter {
    private SafeTensorsWriter() {
    }

    /** Writes {@code model} as an HF model directory: {@code config.json} and one {@code model.safetensors}. */
    public static void writeModel(Path dir, Model model) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), model.config().toJson());
        write(dir.resolve("model.safetensors"), model.tensors().toList());
    }

    public static void write(Path file, Collection<Tensor> tensors) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode entry = header.putObject(t.name());
            entry.put("dtype", t.dtype().name().toUpperCase(Locale.ROOT));
            var shape = entry.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            entry.putArray("data_offsets").add(offset).add(offset + t.byteSize());
            offset += t.byteSize();
        }
        byte[] headerBytes = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        int padded = (headerBytes.length + 7) / 8 * 8;
        try (OutputStream out = Files.newOutputStream(file)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(headerBytes);
            out.write(" ".repeat(padded - headerBytes.length).getBytes(StandardCharsets.US_ASCII));
            var channel = Channels.newChannel(out);
            for (Tensor t : tensors) {
                channel.write(t.data().asByteBuffer());
            }
        }
    }
}
