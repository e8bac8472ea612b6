package dev.ember.bench;

import dev.ember.cli.KvCacheOptions;
import dev.ember.cli.ModelOptions;
import dev.ember.cli.PresetOption;
import dev.ember.cli.SchedulerOptions;
import picocli.CommandLine.Mixin;

/**
 * The options of the in-process serving benchmarks: the model and backend, or a preset shape with random weights;
 * the scheduler's step budget and policy; the KV cache's size. The same options as {@code ember serve}'s.
 */
public final class EngineOptions {

    @Mixin
    ModelOptions model;

    @Mixin
    PresetOption preset;

    @Mixin
    SchedulerOptions scheduler;

    @Mixin
    KvCacheOptions kvCache;
}
