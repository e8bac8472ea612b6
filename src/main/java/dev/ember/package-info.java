/**
 * Ember: an LLM inference engine and benchmark suite.
 *
 * <p>Layers, bottom to top (docs/architecture.md, "Packages and layers"; {@code ArchitectureTest} checks them): this
 * package ({@link dev.ember.EmberException}, {@link dev.ember.Progress}), {@code model} (HF config and safetensors,
 * described once), {@code tokenizer} (HF tokenizer.json and chat templates), {@code sampling} (logits to tokens),
 * {@code kvcache} (paged key/value bookkeeping) and {@code trace}; {@code nativelib} (the NVIDIA libraries);
 * {@code backend} (the forward pass, on the CPU or a GPU) with {@code monitor} (NVML) beside it; {@code scheduler}
 * (continuous batching); {@code engine} (the generation loop); {@code cli} (what the commands share, and
 * {@code generate}), {@code server}, {@code bench} and {@code report}; and {@code app}, the {@code ember} command.
 */
package dev.ember;
