/**
 * The CUDA backend, reached from plain Java through java.lang.foreign (no JNI): bindings to the driver API
 * ({@link dev.ember.backend.cuda.CudaContext}, streams, events, device and pinned memory, modules, launches,
 * graphs) and to cuBLASLt ({@link dev.ember.backend.cuda.CublasLt}), both opened through
 * {@link dev.ember.nativelib.NvidiaLibraries}; Ember's own kernels
 * ({@link dev.ember.backend.cuda.EmberKernels}, CUDA C in src/main/cuda, compiled into the jar when nvcc is
 * present at build time); and the model runner built on them ({@link dev.ember.backend.cuda.CudaBackend}), which
 * also makes random-weight models of any shape directly on the GPU for benchmarks.
 *
 * <p>The runner ({@link dev.ember.backend.cuda.CudaModelRunner}) keeps the order of a step and of a layer; its parts
 * are the weights and KV cache ({@link dev.ember.backend.cuda.DeviceModel}), the step buffers
 * ({@link dev.ember.backend.cuda.StepBuffers}), each step's metadata layout and its writing
 * ({@link dev.ember.backend.cuda.StepLayout}), the decode-graph ladder ({@link dev.ember.backend.cuda.DecodeGraphs}), the
 * host side of steps in flight ({@link dev.ember.backend.cuda.StepSlots}, {@link dev.ember.backend.cuda.CudaSubmittedStep})
 * and its counts ({@link dev.ember.backend.cuda.RunnerCounters}).
 *
 * <p>Every native resource is {@link java.lang.AutoCloseable}; every failing call throws a
 * {@link dev.ember.backend.cuda.CudaException} naming the call and the CUDA error. Where no GPU, driver or
 * kernel build is present, {@link dev.ember.backend.cuda.Availability} says why in one line, without throwing.
 */
package dev.ember.backend.cuda;
