/**
 * Timelines of what the runtime did: a {@link dev.ember.trace.Trace} the engine, the benchmarks and, through their
 * stage profiles, the runners report spans to (free when tracing is off), recorded by a
 * {@link dev.ember.trace.TraceRecorder} and written as Chrome trace-event JSON, which Perfetto and chrome://tracing
 * open. NVTX ranges for Nsight Systems are {@link dev.ember.nativelib.Nvtx}'s.
 */
package dev.ember.trace;
