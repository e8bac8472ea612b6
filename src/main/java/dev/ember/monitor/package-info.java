/**
 * The GPU monitor: NVML bound through java.lang.foreign ({@link dev.ember.monitor.NvmlDevice}; the library found by
 * {@link dev.ember.nativelib.NvidiaLibraries}, so the monitor needs no backend and may run beside any) and sampled on a
 * background thread while a benchmark runs ({@link dev.ember.monitor.GpuMonitor}) for power, energy, utilisation,
 * memory and temperature. Where NVML is missing it reports why and takes no figures, never made-up ones.
 */
package dev.ember.monitor;
