/**
 * Benchmarks: the {@code ember bench} commands, what they compare against (the device's ceilings, which each backend
 * measures: {@link dev.ember.backend.DeviceCeilings}; the bytes and FLOPs a workload must move), and their CSV/JSON
 * outputs with the columns the seed documents list. They reach the device only through {@link dev.ember.backend.Backend}
 * and the GPU monitor; {@code bench.client} drives any OpenAI-compatible server.
 */
package dev.ember.bench;
