/**
 * {@code ember serve}: an OpenAI-compatible HTTP server ({@code /v1/completions}, {@code /v1/chat/completions}
 * with SSE streaming, {@code /v1/models}, {@code /health}, {@code /metrics}) on the JDK's
 * {@code com.sun.net.httpserver} with a virtual thread per exchange, in front of one
 * {@link dev.ember.engine.ServingEngine}.
 */
package dev.ember.server;
