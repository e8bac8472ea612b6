/**
 * {@code ember bench client}: a load generator for any OpenAI-compatible server (Ember's, vLLM's, SGLang's), as
 * {@code vllm bench serve}: datasets, Poisson or gamma arrivals or a concurrency cap, streamed completions timed
 * per token, and latency and throughput figures computed from the server's own token counts.
 */
package dev.ember.bench.client;
