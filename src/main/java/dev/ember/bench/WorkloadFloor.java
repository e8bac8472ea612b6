package dev.ember.bench;

import dev.ember.backend.DeviceCeilings;

import java.io.PrintStream;

/**
 * The time a generation workload needs at least on a device, from its measured ceilings: the floor.
 * Prefill and decode are costed as two phases, each step at its roofline (the larger of its bytes over the copy
 * bandwidth and its FLOPs over the matrix-product rate):
 * <ul>
 *   <li>prefill: every prompt token through the model (compute-bound), the weights read once per step of at most
 *       {@code maxBatchedTokens} prompt tokens, the prompts' K and V written once;</li>
 *   <li>decode: an ideal continuous batch of at most {@code slots} sequences, a finished one replaced at once;
 *       each step reads the weights once plus the K and V of every token each running sequence has cached, and
 *       writes one token's K and V per sequence. Each request's first token comes from its prefill, so it
 *       decodes {@code outputLength - 1} steps.</li>
 * </ul>
 * Attention costs 4 x query width FLOPs per cached token read, per layer. Nothing here depends on how Ember
 * schedules, except the slots and step budget the benchmark gives it.
 *
 * @param bytes          bytes moved by both phases
 * @param flops          FLOPs of both phases
 * @param prefillSeconds the prefill phase at its roofline
 * @param decodeSeconds  the decode steps, each at its roofline
 * @param decodeSteps    steps of the ideal decode batch
 */
public record WorkloadFloor(double bytes, double flops, double prefillSeconds, double decodeSeconds, long decodeSteps,
                            DeviceCeilings ceilings) {

    /** The floor: prefill plus decode, each at its roofline. */
    public double seconds() {
        return prefillSeconds + decodeSeconds;
    }

    /** All bytes over the copy bandwidth: the memory-bound part alone. */
    public double memorySeconds() {
        return ceilings.secondsToMove(bytes);
    }

    /** All FLOPs over the matrix-product rate: the compute-bound part alone; NaN when that rate was not measured. */
    public double computeSeconds() {
        return ceilings.secondsToCompute(flops);
    }

    /** Prints the floor and Ember's {@code seconds} (in {@code steps} engine steps) beside it. */
    public void print(PrintStream out, long outputTokens, double seconds, long steps) {
        out.printf("# floor: %.3f s = prefill %.3f s + decode %.3f s over %d steps (%.3g bytes, %.3g FLOP: %.3f s of copying, %.3f s of matmul)"
                        + " = at most %.0f output tokens/s%n",
                seconds(), prefillSeconds, decodeSeconds, decodeSteps, bytes, flops, memorySeconds(), computeSeconds(),
                outputTokens / seconds());
        out.printf("# Ember: %.3f s in %d engine steps = %.2f x the floor, %.0f%% of its throughput%n",
                seconds, steps, seconds / seconds(), 100 * seconds() / seconds);
    }

    /**
     * The floor of requests {@code i} with {@code inputLengths[i]} prompt tokens and {@code outputLengths[i]}
     * generated tokens, served in order.
     */
    public static WorkloadFloor of(ModelCost cost, int[] inputLengths, int[] outputLengths, int slots, int maxBatchedTokens,
                                   DeviceCeilings ceilings) {
        return of(cost, inputLengths, new int[inputLengths.length], outputLengths, slots, maxBatchedTokens, ceilings);
    }

    /**
     * The same where the first {@code cachedLengths[i]} prompt tokens of request {@code i} come from the prefix cache
     * (another choice of the same prompt computed them): its prefill computes only the rest, each of those queries
     * still reading every token before it.
     */
    public static WorkloadFloor of(ModelCost cost, int[] inputLengths, int[] cachedLengths, int[] outputLengths, int slots,
                                   int maxBatchedTokens, DeviceCeilings ceilings) {
        if (inputLengths.length != outputLengths.length || inputLengths.length != cachedLengths.length || slots < 1
                || maxBatchedTokens < 1) {
            throw new IllegalArgumentException("workload of " + inputLengths.length + " prompts, " + cachedLengths.length
                    + " cached lengths and " + outputLengths.length + " output lengths, " + slots + " slots, "
                    + maxBatchedTokens + " tokens per step");
        }
        Phase prefill = new Phase(ceilings);
        long promptTokens = 0;
        double promptFlops = 0;
        for (int i = 0; i < inputLengths.length; i++) {
            int n = inputLengths[i], computed = n - cachedLengths[i];
            promptTokens += computed;
            double read = promptReads(cost, n) - promptReads(cost, n - computed);
            promptFlops += (double) cost.flopsPerToken() * computed + 4.0 * cost.attentionWidth() * read;
        }
        long prefillSteps = (promptTokens + maxBatchedTokens - 1) / maxBatchedTokens;
        prefill.step((double) prefillSteps * cost.weightBytes() + (double) promptTokens * cost.kvBytesPerToken(), promptFlops);

        Phase decode = new Phase(ceilings);
        int n = inputLengths.length;
        int[] context = new int[slots];
        int[] remaining = new int[slots];
        int active = 0;
        int next = 0;
        long steps = 0;
        while (true) {
            // Fill free slots with the next requests that still have tokens to decode.
            for (int s = 0; s < slots && next < n; s++) {
                while (remaining[s] == 0 && next < n) {
                    if (outputLengths[next] > 1) {
                        context[s] = inputLengths[next] + 1;
                        remaining[s] = outputLengths[next] - 1;
                        active++;
                    }
                    next++;
                }
            }
            if (active == 0) {
                break;
            }
            long read = 0;
            for (int s = 0; s < slots; s++) {
                if (remaining[s] > 0) {
                    read += cost.tokensRead(context[s]);
                }
            }
            decode.step(cost.weightBytes() + (double) (read + active) * cost.kvBytesPerToken(),
                    (double) cost.flopsPerToken() * active + 4.0 * cost.attentionWidth() * read);
            steps++;
            for (int s = 0; s < slots; s++) {
                if (remaining[s] > 0) {
                    context[s]++;
                    if (--remaining[s] == 0) {
                        active--;
                    }
                }
            }
        }
        return new WorkloadFloor(prefill.bytes + decode.bytes, prefill.flops + decode.flops, prefill.seconds,
                decode.seconds, steps, ceilings);
    }

    /** Tokens the first {@code n} queries of a prompt read: query i the i + 1 tokens up to it, within the window. */
    private static double promptReads(ModelCost cost, int n) {
        return cost.slidingWindow() > 0 && n > cost.slidingWindow()
                ? sumUpTo(cost.slidingWindow()) + (double) (n - cost.slidingWindow()) * cost.slidingWindow()
                : sumUpTo(n);
    }

    private static double sumUpTo(long n) {
        return n * (n + 1) / 2.0;
    }

    /** Bytes, FLOPs and roofline seconds of a run of steps. */
    private static final class Phase {
        private final DeviceCeilings ceilings;
        double bytes;
        double flops;
        double seconds;

        Phase(DeviceCeilings ceilings) {
            this.ceilings = ceilings;
        }

        /** One step (or a run of steps with the same bound): the larger of moving its bytes and computing its FLOPs. */
        void step(double stepBytes, double stepFlops) {
            bytes += stepBytes;
            flops += stepFlops;
            seconds += roofline(stepBytes, stepFlops);
        }

        private double roofline(double b, double f) {
            double compute = ceilings.secondsToCompute(f);
            return Math.max(ceilings.secondsToMove(b), Double.isNaN(compute) ? 0 : compute);
        }
    }
}
