/**
 * Ember: an LLM inference engine and benchmark suite.
 *
 * <p>Layers, from files to tokens: {@code model} (HF config and safetensors, described once),
 * {@code tokenizer} (HF tokenizer.json and chat templates), {@code backend} (the forward pass, on the
 * CPU or a GPU), {@code kvcache} (paged key/value storage), {@code sampling} (logits to tokens),
 * {@code engine} (the generation loop) and {@code cli} (the {@code ember} command).
 */
package dev.ember;
