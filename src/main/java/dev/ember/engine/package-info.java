/**
 * The generation loop: prompt to tokens to text, with chunked prefill, sampling, stop conditions and
 * streaming. {@link dev.ember.engine.Generator} serves one request at a time; {@link dev.ember.engine.LlmEngine}
 * batches many over the scheduler on one thread; {@link dev.ember.engine.ServingEngine} runs it on its own engine
 * thread for many concurrent callers (the server) and as the offline batch API.
 */
package dev.ember.engine;
