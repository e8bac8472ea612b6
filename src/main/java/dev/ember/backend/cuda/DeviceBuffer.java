package dev.ember.backend.cuda;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/** A block of device memory ({@code cuMemAlloc}), freed on {@link #close()}. */
public final class DeviceBuffer implements AutoCloseable {
    private final long address;
    private final long byteSize;
    private boolean freed;

    private DeviceBuffer(long address, long byteSize) {
        this.address = address;
        this.byteSize = byteSize;
    }

    /** Allocates {@code bytes} (at least one) of device memory, aligned to at least 256 bytes. */
    public static DeviceBuffer allocate(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("negative allocation: " + bytes);
        }
        long size = Math.max(bytes, 1);
        return new DeviceBuffer(Driver.memAlloc(size), size);
    }

    /** The device address of the first byte. */
    public long address() {
        return address;
    }

    /** The device address of {@code buffer}, or 0 where there is none: how kernels are told an optional input is absent. */
    public static long addressOf(DeviceBuffer buffer) {
        return buffer == null ? 0 : buffer.address();
    }

    /** The device address {@code offset} bytes in, checked against the buffer's size. */
    public long address(long offset) {
        Objects.checkIndex(offset, byteSize);
        return address + offset;
    }

    public long byteSize() {
        return byteSize;
    }

    /** Copies all of {@code host} to the start of this buffer and waits for the copy. */
    public void copyFromHost(MemorySegment host) {
        copyFromHost(host, 0);
    }

    /** Copies all of {@code host} to {@code offset} bytes into this buffer and waits for the copy. */
    public void copyFromHost(MemorySegment host, long offset) {
        checkRange(offset, host.byteSize());
        Driver.memcpyHtoD(address + offset, host, host.byteSize());
    }

    /** Fills all of {@code host} from the start of this buffer, after all preceding work of the context. */
    public void copyToHost(MemorySegment host) {
        checkRange(0, host.byteSize());
        Driver.memcpyDtoH(host, address, host.byteSize());
    }

    /** Queues a copy of {@code host} (pinned, for a truly asynchronous copy) to {@code offset} bytes in. */
    public void copyFromHostAsync(MemorySegment host, long offset, CudaStream stream) {
        checkRange(offset, host.byteSize());
        Driver.memcpyHtoDAsync(address + offset, host, host.byteSize(), stream.handle());
    }

    /** Queues a copy of this buffer's first {@code host.byteSize()} bytes into {@code host}. */
    public void copyToHostAsync(MemorySegment host, CudaStream stream) {
        checkRange(0, host.byteSize());
        Driver.memcpyDtoHAsync(host, address, host.byteSize(), stream.handle());
    }

    /** Queues a copy of {@code host.byteSize()} bytes from {@code offset} bytes into this buffer into {@code host}. */
    public void copyToHostAsync(long offset, MemorySegment host, CudaStream stream) {
        checkRange(offset, host.byteSize());
        Driver.memcpyDtoHAsync(host, address + offset, host.byteSize(), stream.handle());
    }

    /** Queues a fill of {@code count} 32-bit words from {@code offset} bytes in with {@code bits}. */
    public void fill32Async(long offset, long count, int bits, CudaStream stream) {
        checkRange(offset, count * 4);
        Driver.memsetD32Async(address + offset, bits, count, stream.handle());
    }

    private void checkRange(long offset, long bytes) {
        if (offset < 0 || bytes < 0 || offset + bytes > byteSize) {
            throw new IndexOutOfBoundsException("bytes [" + offset + ", " + (offset + bytes) + ") outside a device buffer of "
                    + byteSize);
        }
    }

    @Override
    public void close() {
        if (!freed) {
            freed = true;
            Driver.memFree(address);
        }
    }
}
