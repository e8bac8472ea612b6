/**
 * From logits to tokens, and when to stop: {@link dev.ember.sampling.SamplingParams} (one request's
 * settings), {@link dev.ember.sampling.Sampler} (repetition penalty, temperature, top-k, top-p and min-p
 * in the order and with the semantics of HF transformers' {@code generate}, then a seeded draw) and
 * {@link dev.ember.sampling.StopStrings} (stop-string matching over streamed text, holding back what
 * might still turn out to be the start of a stop string).
 */
package dev.ember.sampling;
