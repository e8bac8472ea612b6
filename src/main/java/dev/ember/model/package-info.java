/**
 * The model, described once: {@link dev.ember.model.ModelConfig} from config.json and
 * {@link dev.ember.model.Tensor}s memory-mapped from safetensors files, assembled into a
 * {@link dev.ember.model.Model} that every backend reads.
 */
package dev.ember.model;
