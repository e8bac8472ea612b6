package dev.ember.backend.streaming;

import dev.ember.EmberException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

/**
 * A file read with {@code pread(2)}, opened with {@code O_DIRECT} where the file system allows it, so that reads come
 * from the disk and not from the page cache (which would hide the disk's speed and fill the host's memory). Direct
 * reads must start, end and land on {@link #ALIGNMENT}-byte boundaries; {@link #read} takes care of that through an
 * aligned buffer of its own. Where direct I/O is refused, the file is read through the page cache and
 * {@link #direct()} says so. Linux only. Not thread-safe.
 */
final class DirectFile implements AutoCloseable {
    /** The logical block size direct reads align to (4 KiB covers every disk Ember meets). */
    static final long ALIGNMENT = 4096;
    private static final int O_RDONLY = 0;
    /** O_DIRECT's value differs between architectures (asm-generic and x86 against arm64). */
    private static final int O_DIRECT = System.getProperty("os.arch").equals("aarch64") ? 0x10000 : 0x4000;
    private static final int EINTR = 4;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option ERRNO_OPTION = Linker.Option.captureCallState("errno");
    private static final MethodHandle OPEN = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("open"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
            ERRNO_OPTION, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle PREAD = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("pread"),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG), ERRNO_OPTION);
    private static final MethodHandle CLOSE = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("close"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle STRERROR = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("strerror"),
            FunctionDescriptor.of(ValueLayout.ADDRESS.withTargetLayout(MemoryLayout.sequenceLayout(256, ValueLayout.JAVA_BYTE)),
                    ValueLayout.JAVA_INT));

    private final Path path;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment state = arena.allocate(CALL_STATE);
    private final MemorySegment bounce;
    private int fd;
    private boolean direct;
    private String whyNotDirect;

    /** Opens {@code path}; reads go through an aligned buffer of at least {@code largestRead} bytes. */
    DirectFile(Path path, long largestRead) {
        this.path = path;
        this.bounce = arena.allocate(align(largestRead) + 2 * ALIGNMENT, ALIGNMENT);
        MemorySegment name = arena.allocateFrom(path.toString());
        fd = open(name, O_RDONLY | O_DIRECT);
        direct = fd >= 0;
        if (!direct) {
            whyNotDirect = errorText(errno());
            fd = open(name, O_RDONLY);
            if (fd < 0) {
                int errno = errno();
                arena.close();
                throw new EmberException("open(" + path + ") failed: " + errorText(errno));
            }
        }
    }

    /** Whether reads bypass the page cache. */
    boolean direct() {
        return direct;
    }

    /** Why direct I/O was refused, or null where it is used. */
    String whyNotDirect() {
        return whyNotDirect;
    }

    Path path() {
        return path;
    }

    /** Reads {@code out.byteSize()} bytes from {@code offset} in the file into {@code out}, through this file's buffer. */
    void read(long offset, MemorySegment out) {
        long at = readInto(offset, out.byteSize(), bounce, 0);
        MemorySegment.copy(bounce, at, out, 0, out.byteSize());
    }

    /**
     * Reads {@code length} bytes from {@code offset} in the file straight into {@code buffer}, from the block-aligned
     * position {@code at} on (direct reads cover whole blocks, so a few bytes before and after come too); returns where
     * in {@code buffer} the requested bytes start. No copy through this file's own buffer.
     */
    long readInto(long offset, long length, MemorySegment buffer, long at) {
        if (at % ALIGNMENT != 0 || buffer.address() % ALIGNMENT != 0) {
            throw new IllegalArgumentException("direct reads land on " + ALIGNMENT + "-byte boundaries");
        }
        long start = direct ? alignDown(offset) : offset;
        long end = direct ? align(offset + length) : offset + length;
        long wanted = offset + length - start;
        if (at + (end - start) > buffer.byteSize()) {
            throw new IllegalArgumentException("a read of " + length + " bytes does not fit the staging buffer");
        }
        long done = 0;
        while (done < wanted) {
            long n = pread(buffer.asSlice(at + done), end - start - done, start + done);
            if (n < 0 && direct && done == 0) {
                whyNotDirect = errorText((int) -n);
                direct = false;
                reopenBuffered();
                return readInto(offset, length, buffer, at);
            }
            if (n <= 0) {
                throw new EmberException("pread(" + path + ", " + (end - start - done) + " bytes at " + (start + done) + ") "
                        + (n == 0 ? "reached the end of the file" : "failed: " + errorText((int) -n)));
            }
            done += n;
        }
        return at + (offset - start);
    }

    private void reopenBuffered() {
        closeFd();
        fd = open(arena.allocateFrom(path.toString()), O_RDONLY);
        if (fd < 0) {
            throw new EmberException("open(" + path + ") failed: " + errorText(errno()));
        }
    }

    /** {@code bytes} rounded up to a whole number of blocks. */
    static long align(long bytes) {
        return (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    /** {@code bytes} rounded down to a whole number of blocks. */
    static long alignDown(long bytes) {
        return bytes / ALIGNMENT * ALIGNMENT;
    }

    private int open(MemorySegment name, int flags) {
        try {
            return (int) OPEN.invokeExact(state, name, flags, 0);
        } catch (Throwable t) {
            throw new IllegalStateException("open(" + path + ")", t);
        }
    }

    /** Bytes read, or minus the errno; a read interrupted by a signal is retried. */
    private long pread(MemorySegment into, long bytes, long offset) {
        try {
            while (true) {
                long n = (long) PREAD.invokeExact(state, fd, into, bytes, offset);
                if (n >= 0) {
                    return n;
                }
                int errno = errno();
                if (errno != EINTR) {
                    return -errno;
                }
            }
        } catch (Throwable t) {
            throw new IllegalStateException("pread(" + path + ")", t);
        }
    }

    private int errno() {
        return (int) ERRNO.get(state, 0L);
    }

    private static String errorText(int errno) {
        try {
            MemorySegment text = (MemorySegment) STRERROR.invokeExact(errno);
            return text.getString(0) + " (errno " + errno + ")";
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    private void closeFd() {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close(" + path + ")", t);
        }
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            closeFd();
            arena.close();
        }
    }
}
