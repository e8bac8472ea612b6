/**
 * Benchmarks: the {@code ember bench} commands, the hardware ceilings they measure and compare against, and their
 * CSV/JSON outputs with the columns the seed documents list.
 */
package dev.ember.bench;
