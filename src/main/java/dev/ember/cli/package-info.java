/**
 * What every command shares, and {@code ember generate}: the option mixins ({@link dev.ember.cli.ModelOptions},
 * {@link dev.ember.cli.PresetOption}, {@link dev.ember.cli.KvCacheOptions}, {@link dev.ember.cli.SchedulerOptions}),
 * opening a model on a backend ({@link dev.ember.cli.LoadedModel}), console progress, prompt files, the median and
 * spread of samples ({@link dev.ember.cli.Stats}) and how a command line runs ({@link dev.ember.cli.CommandRuns}).
 * {@code server}, {@code bench} and {@code report} use it; it imports none of them, and the root command that
 * registers them all is {@code dev.ember.app.EmberCli}.
 */
package dev.ember.cli;
