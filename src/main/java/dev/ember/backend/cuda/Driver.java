package dev.ember.backend.cuda;

import dev.ember.nativelib.NvidiaLibraries;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The CUDA driver API (libcuda), bound through java.lang.foreign. Each entry point is a {@code static final}
 * downcall handle, invoked with {@code invokeExact}; each wrapper turns a failing {@code CUresult} into a
 * {@link CudaException} naming the call and the error. Device pointers ({@code CUdeviceptr}) travel as
 * {@code long}; opaque handles and host pointers as {@link MemorySegment}.
 *
 * <p>Versioned symbols are bound by the names cuda.h maps them to (e.g. {@code cuMemAlloc_v2}), so these are
 * the same functions a C program compiled against CUDA 13 calls. Loading this class opens libcuda; callers
 * check {@link CudaBackend#availability()} first.
 */
final class Driver {
    static final int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    static final int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    static final int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    static final int CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1;
    static final int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    static final int CU_STREAM_NON_BLOCKING = 1;
    static final int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;
    static final int CUDA_ERROR_NOT_FOUND = 500;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIB = NvidiaLibraries.open(NvidiaLibraries.DRIVER);

    private static final MethodHandle cuGetErrorName = bind("cuGetErrorName", JAVA_INT, ADDRESS);
    private static final MethodHandle cuInit = bind("cuInit", JAVA_INT);
    private static final MethodHandle cuDriverGetVersion = bind("cuDriverGetVersion", ADDRESS);
    private static final MethodHandle cuDeviceGetCount = bind("cuDeviceGetCount", ADDRESS);
    private static final MethodHandle cuDeviceGet = bind("cuDeviceGet", ADDRESS, JAVA_INT);
    private static final MethodHandle cuDeviceGetName = bind("cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
    private static final MethodHandle cuDeviceGetAttribute = bind("cuDeviceGetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
    private static final MethodHandle cuDeviceTotalMem = bind("cuDeviceTotalMem_v2", ADDRESS, JAVA_INT);
    private static final MethodHandle cuDevicePrimaryCtxRetain = bind("cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
    private static final MethodHandle cuDevicePrimaryCtxRelease = bind("cuDevicePrimaryCtxRelease_v2", JAVA_INT);
    private static final MethodHandle cuCtxSetCurrent = bind("cuCtxSetCurrent", ADDRESS);
    private static final MethodHandle cuCtxSynchronize = bind("cuCtxSynchronize");
    private static final MethodHandle cuDeviceCanAccessPeer = bind("cuDeviceCanAccessPeer", ADDRESS, JAVA_INT, JAVA_INT);
    private static final MethodHandle cuCtxEnablePeerAccess = bind("cuCtxEnablePeerAccess", ADDRESS, JAVA_INT);
    private static final MethodHandle cuMemGetInfo = bind("cuMemGetInfo_v2", ADDRESS, ADDRESS);
    private static final MethodHandle cuMemAlloc = bind("cuMemAlloc_v2", ADDRESS, JAVA_LONG);
    private static final MethodHandle cuMemFree = bind("cuMemFree_v2", JAVA_LONG);
    private static final MethodHandle cuMemAllocHost = bind("cuMemAllocHost_v2", ADDRESS, JAVA_LONG);
    private static final MethodHandle cuMemFreeHost = bind("cuMemFreeHost", ADDRESS);
    private static final MethodHandle cuMemcpyHtoD = bind("cuMemcpyHtoD_v2", JAVA_LONG, ADDRESS, JAVA_LONG);
    private static final MethodHandle cuMemcpyDtoH = bind("cuMemcpyDtoH_v2", ADDRESS, JAVA_LONG, JAVA_LONG);
    private static final MethodHandle cuMemcpyHtoDAsync = bind("cuMemcpyHtoDAsync_v2", JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS);
    private static final MethodHandle cuMemcpyDtoHAsync = bind("cuMemcpyDtoHAsync_v2", ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS);
    private static final MethodHandle cuMemcpyDtoDAsync = bind("cuMemcpyDtoDAsync_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS);
    private static final MethodHandle cuMemsetD32Async = bind("cuMemsetD32Async", JAVA_LONG, JAVA_INT, JAVA_LONG, ADDRESS);
    private static final MethodHandle cuStreamCreate = bind("cuStreamCreate", ADDRESS, JAVA_INT);
    private static final MethodHandle cuStreamDestroy = bind("cuStreamDestroy_v2", ADDRESS);
    private static final MethodHandle cuStreamSynchronize = bind("cuStreamSynchronize", ADDRESS);
    private static final MethodHandle cuStreamWaitEvent = bind("cuStreamWaitEvent", ADDRESS, ADDRESS, JAVA_INT);
    private static final MethodHandle cuEventCreate = bind("cuEventCreate", ADDRESS, JAVA_INT);
    private static final MethodHandle cuEventDestroy = bind("cuEventDestroy_v2", ADDRESS);
    private static final MethodHandle cuEventRecord = bind("cuEventRecord", ADDRESS, ADDRESS);
    private static final MethodHandle cuEventSynchronize = bind("cuEventSynchronize", ADDRESS);
    private static final MethodHandle cuEventElapsedTime = bindFirst(new String[] {"cuEventElapsedTime_v2", "cuEventElapsedTime"},
            ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle cuModuleLoadData = bind("cuModuleLoadData", ADDRESS, ADDRESS);
    private static final MethodHandle cuModuleUnload = bind("cuModuleUnload", ADDRESS);
    private static final MethodHandle cuModuleGetFunction = bind("cuModuleGetFunction", ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle cuFuncSetAttribute = bind("cuFuncSetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
    private static final MethodHandle cuFuncGetAttribute = bind("cuFuncGetAttribute", ADDRESS, JAVA_INT, ADDRESS);
    private static final MethodHandle cuOccupancyMaxActiveBlocksPerMultiprocessor =
            bind("cuOccupancyMaxActiveBlocksPerMultiprocessor", ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG);
    private static final MethodHandle cuLaunchKernel = bind("cuLaunchKernel", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT,
            JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle cuLaunchKernelEx = bind("cuLaunchKernelEx", ADDRESS, ADDRESS, ADDRESS, ADDRESS);
    private static final MethodHandle cuStreamBeginCapture = bind("cuStreamBeginCapture_v2", ADDRESS, JAVA_INT);
    private static final MethodHandle cuStreamEndCapture = bind("cuStreamEndCapture", ADDRESS, ADDRESS);
    private static final MethodHandle cuGraphInstantiate = bind("cuGraphInstantiateWithFlags", ADDRESS, ADDRESS, JAVA_LONG);
    private static final MethodHandle cuGraphLaunch = bind("cuGraphLaunch", ADDRESS, ADDRESS);
    private static final MethodHandle cuGraphUpload = bind("cuGraphUpload", ADDRESS, ADDRESS);
    private static final MethodHandle cuGraphExecDestroy = bind("cuGraphExecDestroy", ADDRESS);
    private static final MethodHandle cuGraphDestroy = bind("cuGraphDestroy", ADDRESS);

    /** cuCtxEnablePeerAccess's answer where the peer is reachable already. */
    private static final int CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED = 704;

    private Driver() {
    }

    /** A handle for {@code int name(args...)}, the shape of every driver entry point. */
    private static MethodHandle bind(String name, MemoryLayout... args) {
        MemorySegment symbol = LIB.find(name).orElseThrow(() ->
                new IllegalStateException("libcuda has no symbol " + name + " (driver too old for CUDA 12/13?)"));
        return LINKER.downcallHandle(symbol, FunctionDescriptor.of(JAVA_INT, args));
    }

    private static MethodHandle bindFirst(String[] names, MemoryLayout... args) {
        for (String name : names) {
            if (LIB.find(name).isPresent()) {
                return bind(name, args);
            }
        }
        return bind(names[names.length - 1], args);
    }

    // ---- errors ----

    /** Throws {@link CudaException} unless {@code result} is CUDA_SUCCESS. */
    static void check(int result, String call) {
        if (result != 0) {
            throw new CudaException(call, result, errorName(result));
        }
    }

    static String errorName(int result) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int r = (int) cuGetErrorName.invokeExact(result, out);
            if (r != 0) {
                return "unknown CUresult";
            }
            return out.get(ADDRESS, 0).reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "unknown CUresult";
        }
    }

    // ---- initialisation and devices ----

    static void init() {
        try {
            check((int) cuInit.invokeExact(0), "cuInit");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static int driverVersion() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDriverGetVersion.invokeExact(out), "cuDriverGetVersion");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceGetCount.invokeExact(out), "cuDeviceGetCount");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static int device(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceGet.invokeExact(out, ordinal), "cuDeviceGet");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static String deviceName(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(256);
            check((int) cuDeviceGetName.invokeExact(out, 256, device), "cuDeviceGetName");
            return out.getString(0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static int deviceAttribute(int device, int attribute) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceGetAttribute.invokeExact(out, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static long deviceTotalMemory(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check((int) cuDeviceTotalMem.invokeExact(out, device), "cuDeviceTotalMem");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    // ---- contexts ----

    /** Whether {@code device} can read and write {@code peer}'s memory directly (NVLink or PCIe peer to peer). */
    static boolean canAccessPeer(int device, int peer) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuDeviceCanAccessPeer.invokeExact(out, device, peer), "cuDeviceCanAccessPeer");
            return out.get(JAVA_INT, 0) != 0;
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** Lets the current context reach {@code peer}'s memory; enabling it twice is not an error. */
    static void enablePeerAccess(MemorySegment peer) {
        try {
            int result = (int) cuCtxEnablePeerAccess.invokeExact(peer, 0);
            if (result != CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED) {
                check(result, "cuCtxEnablePeerAccess");
            }
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static MemorySegment primaryContextRetain(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuDevicePrimaryCtxRetain.invokeExact(out, device), "cuDevicePrimaryCtxRetain");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void primaryContextRelease(int device) {
        try {
            check((int) cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void contextSetCurrent(MemorySegment context) {
        try {
            check((int) cuCtxSetCurrent.invokeExact(context), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void contextSynchronize() {
        try {
            check((int) cuCtxSynchronize.invokeExact(), "cuCtxSynchronize");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** {free, total} device memory in bytes, as the current context sees it. */
    static long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG);
            MemorySegment total = arena.allocate(JAVA_LONG);
            check((int) cuMemGetInfo.invokeExact(free, total), "cuMemGetInfo");
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    // ---- memory ----

    static long memAlloc(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG);
            check((int) cuMemAlloc.invokeExact(out, bytes), "cuMemAlloc(" + bytes + " bytes)");
            return out.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memFree(long pointer) {
        try {
            check((int) cuMemFree.invokeExact(pointer), "cuMemFree");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static MemorySegment memAllocHost(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuMemAllocHost.invokeExact(out, bytes), "cuMemAllocHost(" + bytes + " bytes)");
            return out.get(ADDRESS, 0).reinterpret(bytes);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memFreeHost(MemorySegment pointer) {
        try {
            check((int) cuMemFreeHost.invokeExact(pointer), "cuMemFreeHost");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memcpyHtoD(long dst, MemorySegment src, long bytes) {
        try {
            check((int) cuMemcpyHtoD.invokeExact(dst, src, bytes), "cuMemcpyHtoD");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memcpyDtoH(MemorySegment dst, long src, long bytes) {
        try {
            check((int) cuMemcpyDtoH.invokeExact(dst, src, bytes), "cuMemcpyDtoH");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyHtoDAsync");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoHAsync");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memcpyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoDAsync");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void memsetD32Async(long dst, int value, long count, MemorySegment stream) {
        try {
            check((int) cuMemsetD32Async.invokeExact(dst, value, count, stream), "cuMemsetD32Async");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    // ---- streams and events ----

    static MemorySegment streamCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuStreamCreate.invokeExact(out, flags), "cuStreamCreate");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void streamDestroy(MemorySegment stream) {
        try {
            check((int) cuStreamDestroy.invokeExact(stream), "cuStreamDestroy");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void streamSynchronize(MemorySegment stream) {
        try {
            check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** Work queued on {@code stream} after this call waits, on the device, until {@code event}'s last recording completes. */
    static void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            check((int) cuStreamWaitEvent.invokeExact(stream, event, 0), "cuStreamWaitEvent");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static MemorySegment eventCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuEventCreate.invokeExact(out, flags), "cuEventCreate");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void eventDestroy(MemorySegment event) {
        try {
            check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void eventSynchronize(MemorySegment event) {
        try {
            check((int) cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_FLOAT);
            check((int) cuEventElapsedTime.invokeExact(out, start, end), "cuEventElapsedTime");
            return out.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    // ---- modules and launches ----

    static MemorySegment moduleLoadData(MemorySegment image) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuModuleLoadData.invokeExact(out, image), "cuModuleLoadData");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void moduleUnload(MemorySegment module) {
        try {
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** The function, or {@link MemorySegment#NULL} when the module has none of that name. */
    static MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int result = (int) cuModuleGetFunction.invokeExact(out, module, arena.allocateFrom(name));
            if (result == CUDA_ERROR_NOT_FOUND) {
                return MemorySegment.NULL;
            }
            check(result, "cuModuleGetFunction(" + name + ")");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void funcSetAttribute(MemorySegment function, int attribute, int value, String name) {
        try {
            check((int) cuFuncSetAttribute.invokeExact(function, attribute, value), "cuFuncSetAttribute(" + name + ")");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static int funcGetAttribute(MemorySegment function, int attribute, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuFuncGetAttribute.invokeExact(out, attribute, function), "cuFuncGetAttribute(" + name + ")");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** How many blocks of {@code threads} threads and {@code sharedBytes} of dynamic shared memory a multiprocessor holds. */
    static int blocksPerMultiprocessor(MemorySegment function, int threads, long sharedBytes, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_INT);
            check((int) cuOccupancyMaxActiveBlocksPerMultiprocessor.invokeExact(out, function, threads, sharedBytes),
                    "cuOccupancyMaxActiveBlocksPerMultiprocessor(" + name + ")");
            return out.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** Returns the raw CUresult, so that the caller can name the kernel without building a string per launch. */
    static int launchKernel(MemorySegment function, int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
                            int sharedBytes, MemorySegment stream, MemorySegment params) {
        try {
            return (int) cuLaunchKernel.invokeExact(function, gridX, gridY, gridZ, blockX, blockY, blockZ, sharedBytes,
                    stream, params, MemorySegment.NULL);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /**
     * {@code cuLaunchKernelEx(config, function, params, NULL)}: a launch whose CUlaunchConfig carries attributes
     * (KernelArgs fills it). Returns the raw CUresult, as {@link #launchKernel} does.
     */
    static int launchKernelEx(MemorySegment config, MemorySegment function, MemorySegment params) {
        try {
            return (int) cuLaunchKernelEx.invokeExact(config, function, params, MemorySegment.NULL);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    // ---- graphs ----

    static void streamBeginCapture(MemorySegment stream) {
        try {
            check((int) cuStreamBeginCapture.invokeExact(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    /** Ends the capture and returns the graph; the capture ends even when this throws. */
    static MemorySegment streamEndCapture(MemorySegment stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuStreamEndCapture.invokeExact(stream, out), "cuStreamEndCapture");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static MemorySegment graphInstantiate(MemorySegment graph) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) cuGraphInstantiate.invokeExact(out, graph, 0L), "cuGraphInstantiate");
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void graphLaunch(MemorySegment exec, MemorySegment stream) {
        try {
            check((int) cuGraphLaunch.invokeExact(exec, stream), "cuGraphLaunch");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void graphUpload(MemorySegment exec, MemorySegment stream) {
        try {
            check((int) cuGraphUpload.invokeExact(exec, stream), "cuGraphUpload");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void graphExecDestroy(MemorySegment exec) {
        try {
            check((int) cuGraphExecDestroy.invokeExact(exec), "cuGraphExecDestroy");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }

    static void graphDestroy(MemorySegment graph) {
        try {
            check((int) cuGraphDestroy.invokeExact(graph), "cuGraphDestroy");
        } catch (Throwable t) {
            throw NvidiaLibraries.rethrow(t);
        }
    }
}
