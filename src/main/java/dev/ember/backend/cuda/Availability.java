package dev.ember.backend.cuda;

import dev.ember.nativelib.NvidiaLibraries;

/**
 * Whether this process can use a GPU, and if not, why: one line for a log or a skipped test
 * ("libcuda.so.1 not found ...", "cuInit: CUDA_ERROR_NO_DEVICE (100)").
 *
 * @param device the first GPU, or null when none is usable
 * @param reason why no GPU is usable, or null when one is
 */
public record Availability(CudaDevice device, String reason) {

    public boolean isAvailable() {
        return device != null;
    }

    /** Probed once per process: the answer does not change while it runs. */
    private static final class Probe {
        static final Availability RESULT = probe();
    }

    /** This process's answer, probed on first use; never throws. */
    static Availability current() {
        return Probe.RESULT;
    }

    private static Availability probe() {
        if (!EmberKernels.bundled()) {
            return unavailable("this build has no CUDA kernels (nvcc was not found when Ember was built)");
        }
        try {
            NvidiaLibraries.open(NvidiaLibraries.DRIVER);
        } catch (IllegalStateException e) {
            return unavailable("no NVIDIA driver: " + e.getMessage());
        }
        try {
            Driver.init();
            int count = Driver.deviceCount();
            if (count == 0) {
                return unavailable("the NVIDIA driver reports no CUDA device");
            }
            CudaDevice device = CudaDevice.query(0);
            if (device.computeMajor() < 8) {
                return unavailable(device.name() + " has compute capability " + device.computeMajor() + "."
                        + device.computeMinor() + "; Ember's kernels need 8.0 (Ampere) or newer");
            }
            NvidiaLibraries.open(NvidiaLibraries.CUBLAS_LT);
            return new Availability(device, null);
        } catch (CudaException e) {
            return unavailable(e.getMessage());
        } catch (RuntimeException | LinkageError e) {
            return unavailable(e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    private static Availability unavailable(String reason) {
        return new Availability(null, reason.replace('\n', ' '));
    }

    @Override
    public String toString() {
        return isAvailable() ? "CUDA available: " + device.describe() : "CUDA unavailable: " + reason;
    }
}
