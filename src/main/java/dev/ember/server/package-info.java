/**
 * {@code ember serve}: an OpenAI-compatible HTTP server ({@code /v1/completions}, {@code /v1/chat/completions}
 * with SSE streaming, {@code /v1/models}, {@code /health}, {@code /metrics}) on Jetty 12's core server with a
 * virtual thread per request, in front of one
 * {@link dev.ember.engine.ServingEngine}.
 */
package dev.ember.server;
