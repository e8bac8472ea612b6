package dev.ember.cli;

import dev.ember.EmberException;
import dev.ember.backend.Backend;

import java.util.Locale;

/**
 * Where a draft model runs beside its target: seed 001's GPU strategies. {@code same}: both on the target's device.
 * {@code separate}: the target on the first GPU, the draft on the next. {@code ratio}: the target's layers pipelined over
 * its share of the GPUs and the draft's over the rest (001's multi_gpu_ratio, e.g. 6 and 2). {@code auto} resolves to
 * one of them for the backend at hand. Only {@code same} runs today: the other two need models split over GPUs, which
 * the CUDA backend does not drive yet, and are refused by name until it does.
 */
public sealed interface DraftPlacement {
    /** The draft on the target's device. */
    record Same() implements DraftPlacement {
    }

    /** The target on one GPU, the draft on another. */
    record Separate() implements DraftPlacement {
    }

    /** The target's layers over {@code targetDevices} GPUs, the draft's over the next {@code draftDevices}. */
    record Ratio(int targetDevices, int draftDevices) implements DraftPlacement {
        public Ratio {
            EmberException.require(targetDevices >= 1 && draftDevices >= 1, "--speculative-placement ratio takes at least one "
                    + "GPU for each model, got --target-gpus " + targetDevices + " and --draft-gpus " + draftDevices);
        }
    }

    /** Left to the backend: {@link #resolve}. */
    record Auto() implements DraftPlacement {
    }

    /**
     * {@code strategy} (same, separate, ratio or 001's multi_gpu_ratio, auto; null: auto) with ratio's device counts
     * ({@code --target-gpus}, {@code --draft-gpus}; null where not given), which only ratio takes.
     */
    static DraftPlacement parse(String strategy, Integer targetDevices, Integer draftDevices) {
        String name = strategy == null ? "auto" : strategy.strip().toLowerCase(Locale.ROOT);
        DraftPlacement placement = switch (name) {
            case "same" -> new Same();
            case "separate" -> new Separate();
            case "auto" -> new Auto();
            case "ratio", "multi_gpu_ratio" -> {
                EmberException.require(targetDevices != null && draftDevices != null,
                        "--speculative-placement ratio needs --target-gpus N and --draft-gpus M");
                yield new Ratio(targetDevices, draftDevices);
            }
            default -> throw new EmberException("--speculative-placement " + strategy
                    + " is not one of same, separate, ratio (multi_gpu_ratio), auto");
        };
        EmberException.require(placement instanceof Ratio || targetDevices == null && draftDevices == null,
                "--target-gpus and --draft-gpus go with --speculative-placement ratio");
        return placement;
    }

    /** GPUs this placement takes: one for the shared device. */
    default int devices() {
        return switch (this) {
            case Same s -> 1;
            case Auto a -> 1;
            case Separate s -> 2;
            case Ratio r -> r.targetDevices() + r.draftDevices();
        };
    }

    /**
     * This placement as it runs on {@code backend}: auto is {@code same} (the one placement that runs today); the
     * others are checked against the devices there, and {@code separate} and {@code ratio} refused by name.
     */
    default DraftPlacement resolve(Backend backend) {
        return switch (this) {
            case Auto a -> new Same();
            case Same s -> s;
            case Separate s -> refused(backend);
            case Ratio r -> refused(backend);
        };
    }

    private DraftPlacement refused(Backend backend) {
        int devices = backend.devices();
        if (devices < devices()) {
            throw new EmberException("--speculative-placement " + describe() + " takes " + devices() + " GPUs; "
                    + backend.deviceName() + (devices == 1 ? " is one device" : " has " + devices) + ": --speculative-placement same");
        }
        throw new EmberException("--speculative-placement " + describe() + ": the draft and target on different GPUs need "
                + "peer-to-peer copies of the drafted tokens (and, for ratio, each model split over its GPUs), which Ember "
                + "does not drive yet: --speculative-placement same");
    }

    /** Its name in seed 001's terms, as the options and the benchmark's header give it. */
    default String describe() {
        return switch (this) {
            case Same s -> "same";
            case Separate s -> "separate";
            case Auto a -> "auto";
            case Ratio r -> "ratio " + r.targetDevices() + ":" + r.draftDevices();
        };
    }
}
