/**
 * Timelines of what the runtime did: a {@link dev.ember.trace.Trace} the engine and, later, the runners report spans
 * to (free when tracing is off), recorded by a {@link dev.ember.trace.TraceRecorder} and written as Chrome
 * trace-event JSON, which Perfetto and chrome://tracing open.
 */
package dev.ember.trace;
