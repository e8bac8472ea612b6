/**
 * The one loop that drives the model: {@link dev.ember.engine.LlmEngine} adds requests and steps (schedule, submit to
 * the runner, take the tokens back through the scheduler) until none is left. {@link dev.ember.engine.Generator} runs
 * it for one request at a time on the caller's thread; {@link dev.ember.engine.ServingEngine} runs it on its own
 * engine thread for many concurrent callers (the server) and as the offline batch API.
 */
package dev.ember.engine;
