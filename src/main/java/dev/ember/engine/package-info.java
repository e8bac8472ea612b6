/**
 * The generation loop: prompt to tokens to text, with chunked prefill, sampling, stop conditions and
 * streaming. {@link dev.ember.engine.Generator} serves one request at a time; the serving scheduler builds
 * on the same runner contract.
 */
package dev.ember.engine;
