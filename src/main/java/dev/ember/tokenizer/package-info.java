/**
 * Text to token ids and back, and conversations to prompts, exactly as HF transformers does them for the model:
 * {@link dev.ember.tokenizer.Tokenizer} runs HF's own Rust tokenizers (through DJL, offline, from the native
 * library its jar carries) and the model's Jinja chat template (through Jinjava, taught the Python-isms HF
 * templates use); {@link dev.ember.tokenizer.StreamingDecoder} turns generated ids into text as they come.
 */
package dev.ember.tokenizer;
