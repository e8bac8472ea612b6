/**
 * Where the forward pass runs. {@link dev.ember.backend.Backend} loads a model into a
 * {@link dev.ember.backend.ModelRunner}, which executes {@link dev.ember.backend.ForwardBatch}es of
 * prefill chunks and decodes against a paged KV cache. {@code backend.cpu} is the Vector API reference;
 * {@code backend.cuda} runs on NVIDIA GPUs.
 */
package dev.ember.backend;
