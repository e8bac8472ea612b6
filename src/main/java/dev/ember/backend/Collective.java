package dev.ember.backend;

/**
 * One rank's end of a group of ranks that compute one model together (tensor or pipeline parallel), as NCCL's
 * communicators are:
 * every rank calls the same operations in the same order, each returning once the group has done it. The in-process
 * group ({@link InProcessCollective}) runs the ranks as threads of one process, so that the sharding is checked on a
 * CPU; a GPU group would be NCCL's.
 */
public interface Collective {

    /** What an operation throws on a rank whose group was aborted: another rank failed, and says why. */
    final class Aborted extends IllegalStateException {
        public Aborted(String message, Throwable cause) {
            super(message, cause);
        }
    }

    int rank();

    int size();

    /** {@code data[offset, offset + length)} becomes the element-wise sum of every rank's, the same bits on every rank. */
    void allReduceSum(float[] data, int offset, int length);

    /**
     * Every rank's {@code rows x width} block ({@code local}, row-major; {@code width} may differ between ranks) is
     * written into {@code out} ({@code rows x} the sum of the widths, row-major), rank 0's columns first: the ranks'
     * shares of the logits become every row's whole vocabulary.
     */
    void allGatherColumns(float[] local, int rows, int width, float[] out);

    /**
     * Sends {@code data[offset, offset + length)} to rank {@code peer}, which takes it with {@link #receive}: the
     * activations one pipeline stage hands the next. Returns once the data may be reused.
     */
    void send(float[] data, int offset, int length, int peer);

    /** Takes what rank {@code peer} sent next into {@code data[offset, offset + length)}, waiting until it has. */
    void receive(float[] data, int offset, int length, int peer);

    /**
     * Ends every operation the group is waiting in, and those called later, with an exception: for a rank that failed
     * before reaching an operation the others wait in.
     */
    void abort();

    /** Readies the group for new operations once every rank has returned from a failed one. */
    void reset();
}
