/**
 * The CPU backend: the full forward pass with the Vector API on all cores, weights read in place from
 * the mapped safetensors. It is the reference the CUDA backend is tested against, and lets everything but
 * GPU speed run on a machine without a GPU.
 */
package dev.ember.backend.cpu;
