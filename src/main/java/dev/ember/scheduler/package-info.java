/**
 * Continuous batching: {@link dev.ember.scheduler.Scheduler} chooses each step's prefill chunks and decodes
 * within a token budget under a {@link dev.ember.scheduler.SchedulePolicy}, preempts by recomputation when
 * KV blocks run out, and reuses cached prompt prefixes through the {@link dev.ember.scheduler.PrefixCache}
 * radix tree. A finished {@link dev.ember.scheduler.Sequence} records its {@link dev.ember.scheduler.FinishReason}.
 */
package dev.ember.scheduler;
