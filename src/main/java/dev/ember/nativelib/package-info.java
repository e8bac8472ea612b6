/**
 * The native libraries Ember calls through java.lang.foreign, below every package that uses them. NVIDIA's:
 * {@link dev.ember.nativelib.NvidiaLibraries} finds and opens each one (the driver and cuBLASLt for
 * {@code backend.cuda}, NVML for {@code monitor}, NVTX), and {@link dev.ember.nativelib.Nvtx} binds NVTX ranges for
 * Nsight Systems, which the backend's stage profiles and the benchmarks push; from the C library,
 * {@link dev.ember.nativelib.ThreadNiceness} sets a thread's nice value (the CPU backend's compute threads yield to a
 * server's). It imports nothing of Ember's.
 */
package dev.ember.nativelib;
