package dev.ember.backend;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The in-process group: three ranks as threads sum and gather as NCCL would, and an abort frees the ranks waiting. Each
 * rank has a thread of its own, as in the CPU backend: the ranks wait for each other spinning.
 */
class InProcessCollectiveTest {
    private static final ExecutorService THREADS = Executors.newFixedThreadPool(3, Thread.ofPlatform().daemon().factory());

    @Test
    void allReduceGivesEveryRankTheSameSumsAndAllGatherPutsColumnsInRankOrder() throws Exception {
        int size = 3;
        InProcessCollective group = new InProcessCollective(size);
        List<CompletableFuture<float[][]>> ranks = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            Collective rank = group.rank(r);
            ranks.add(CompletableFuture.supplyAsync(() -> {
                float[] data = new float[10];
                for (int i = 0; i < data.length; i++) {
                    data[i] = 0.1f * (rank.rank() + 1) * (i + 1);
                }
                rank.allReduceSum(data, 2, 7);  // elements 2..8 only
                int width = rank.rank() + 1;    // widths 1, 2, 3: six columns in all
                float[] local = new float[2 * width];
                for (int i = 0; i < local.length; i++) {
                    local[i] = 100 * rank.rank() + i;
                }
                float[] gathered = new float[2 * 6];
                rank.allGatherColumns(local, 2, width, gathered);
                return new float[][] {data, gathered};
            }, THREADS));
        }
        float[][][] results = new float[size][][];
        for (int r = 0; r < size; r++) {
            results[r] = ranks.get(r).get(10, TimeUnit.SECONDS);
        }
        for (int r = 0; r < size; r++) {
            float[] data = results[r][0];
            for (int i = 0; i < data.length; i++) {
                float own = 0.1f * (r + 1) * (i + 1);
                float sum = 0.1f * 1 * (i + 1) + 0.1f * 2 * (i + 1) + 0.1f * 3 * (i + 1);
                assertEquals(i >= 2 && i < 9 ? sum : own, data[i], 1e-5f, "rank " + r + ", element " + i);
            }
            assertArrayEquals(results[0][0], i(results[r][0], results[0][0]), "the same bits on every rank");
            assertArrayEquals(new float[] {0, 100, 101, 200, 201, 202, 1, 102, 103, 203, 204, 205}, results[r][1], "rank " + r);
        }
    }

    /** The summed elements of {@code data} where they are summed, the rest of {@code reference}: compares the sums' bits. */
    private static float[] i(float[] data, float[] reference) {
        float[] out = reference.clone();
        System.arraycopy(data, 2, out, 2, 7);
        return out;
    }

    @Test
    void anAbortFreesTheRanksWaitingAndResetReadiesTheGroup() throws Exception {
        InProcessCollective group = new InProcessCollective(2);
        CompletableFuture<Void> waiting = CompletableFuture.runAsync(() -> group.rank(1).allReduceSum(new float[4], 0, 4), THREADS);
        Thread.sleep(50);
        group.rank(0).abort();
        ExecutionException e = assertThrows(ExecutionException.class, () -> waiting.get(10, TimeUnit.SECONDS));
        assertInstanceOf(Collective.Aborted.class, e.getCause());
        assertThrows(Collective.Aborted.class, () -> group.rank(0).allReduceSum(new float[4], 0, 4), "aborted until reset");
        group.rank(0).reset();
        CompletableFuture<Void> other = CompletableFuture.runAsync(() -> group.rank(1).allReduceSum(new float[] {1, 2}, 0, 2), THREADS);
        float[] mine = {3, 4};
        group.rank(0).allReduceSum(mine, 0, 2);
        other.get(10, TimeUnit.SECONDS);
        assertArrayEquals(new float[] {4, 6}, mine);
    }
}
