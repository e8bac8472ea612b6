package dev.ember.backend.cuda;

import dev.ember.EmberException;

/**
 * A CUDA driver or cuBLASLt call that failed. The message names the call and the library's own name for
 * the error (for example {@code cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (2)}), which is what the CUDA
 * documentation and forums index by.
 */
public final class CudaException extends EmberException {
    private final String call;
    private final int code;
    private final String errorName;

    CudaException(String call, int code, String errorName) {
        super(call + ": " + errorName + " (" + code + ")");
        this.call = call;
        this.code = code;
        this.errorName = errorName;
    }

    /** The library function that failed, e.g. {@code cuLaunchKernel(decode_attention_keys_d128_g4_bf16)}. */
    public String call() {
        return call;
    }

    /** The numeric {@code CUresult} or {@code cublasStatus_t}. */
    public int code() {
        return code;
    }

    /** The library's name for the error, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public String errorName() {
        return errorName;
    }
}
