/**
 * Where the forward pass runs. {@link dev.ember.backend.Backend} loads a model into a
 * {@link dev.ember.backend.ModelRunner}, which executes {@link dev.ember.backend.ForwardBatch}es of
 * prefill chunks and decodes against a paged KV cache. A backend also answers what the commands need to know of its
 * device (its memory for a KV cache, {@link dev.ember.backend.KvCacheMemory}; how it times work,
 * {@link dev.ember.backend.WorkMarks}; its kernels, {@link dev.ember.backend.KernelSuite}; its measured
 * {@link dev.ember.backend.DeviceCeilings}), so nothing above this package names a backend's classes: only
 * {@link dev.ember.backend.Backends}, the factory, does. {@code backend.cpu} is the Vector API reference;
 * {@code backend.cuda} runs on NVIDIA GPUs.
 */
package dev.ember.backend;
