/**
 * Continuous batching, and a sequence's life: {@link dev.ember.scheduler.Scheduler} chooses each step's prefill chunks
 * and decodes within a token budget under a {@link dev.ember.scheduler.SchedulePolicy}, preempts by recomputation when
 * KV blocks run out, reuses cached prompt prefixes through the {@link dev.ember.scheduler.PrefixCache} radix tree, and
 * takes each step's sampled tokens back, ending a {@link dev.ember.scheduler.Sequence} at an end-of-sequence token, a
 * stop string or its length (its {@link dev.ember.scheduler.FinishReason}).
 */
package dev.ember.scheduler;
