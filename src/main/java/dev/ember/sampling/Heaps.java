package dev.ember.sampling;

/** Binary heaps over primitive arrays, so that partial selection allocates nothing and boxes nothing. */
final class Heaps {
    private Heaps() {
    }

    static void heapifyMin(float[] heap, int size) {
        for (int i = (size >>> 1) - 1; i >= 0; i--) {
            siftDownMin(heap, i, size);
        }
    }

    /** Replaces the smallest element with {@code value} and restores the heap. */
    static void replaceMin(float[] heap, int size, float value) {
        heap[0] = value;
        siftDownMin(heap, 0, size);
    }

    private static void siftDownMin(float[] heap, int index, int size) {
        float value = heap[index];
        int child;
        while ((child = 2 * index + 1) < size) {
            if (child + 1 < size && heap[child + 1] < heap[child]) {
                child++;
            }
            if (heap[child] >= value) {
                break;
            }
            heap[index] = heap[child];
            index = child;
        }
        heap[index] = value;
    }

    static void heapifyMax(long[] heap, int size) {
        for (int i = (size >>> 1) - 1; i >= 0; i--) {
            siftDownMax(heap, i, size);
        }
    }

    /** Removes and returns the largest of the {@code size} elements; the heap then holds {@code size - 1}. */
    static long popMax(long[] heap, int size) {
        long top = heap[0];
        heap[0] = heap[size - 1];
        siftDownMax(heap, 0, size - 1);
        return top;
    }

    private static void siftDownMax(long[] heap, int index, int size) {
        long value = heap[index];
        int child;
        while ((child = 2 * index + 1) < size) {
            if (child + 1 < size && heap[child + 1] > heap[child]) {
                child++;
            }
            if (heap[child] <= value) {
                break;
            }
            heap[index] = heap[child];
            index = child;
        }
        heap[index] = value;
    }
}
