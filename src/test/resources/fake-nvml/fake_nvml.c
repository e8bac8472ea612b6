/*
 * A stand-in for libnvidia-ml.so.1 with the functions, signatures and struct layouts of nvml.h that Ember's monitor
 * binds, for testing the bindings on machines without a GPU: one GPU drawing a constant 250 W, whose energy counter
 * grows at exactly that rate.
 */
#include <string.h>
#include <time.h>

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; int sensorType; int temperature; } nvmlTemperature_v1_t;

static int initialised;
static double start;

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

const char *nvmlErrorString(int result) { return result == 2 ? "Invalid Argument" : "Unknown Error"; }
int nvmlInit_v2(void) { if (initialised++ == 0) start = seconds(); return 0; }
int nvmlShutdown(void) { return --initialised < 0 ? 1 : 0; }
int nvmlSystemGetDriverVersion(char *version, unsigned int length) { strncpy(version, "580.00 (fake)", length); return 0; }
int nvmlDeviceGetCount_v2(unsigned int *count) { *count = 1; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) { *device = (void *) 0x1; return index == 0 ? 0 : 2; }
int nvmlDeviceGetName(void *device, char *name, unsigned int length) { strncpy(name, "Fake GPU", length); return 0; }
int nvmlDeviceGetPowerUsage(void *device, unsigned int *milliwatts) { *milliwatts = 250000; return 0; }
int nvmlDeviceGetTotalEnergyConsumption(void *device, unsigned long long *millijoules) {
    *millijoules = (unsigned long long) ((seconds() - start) * 250000.0);
    return 0;
}
int nvmlDeviceGetUtilizationRates(void *device, nvmlUtilization_t *u) { u->gpu = 87; u->memory = 42; return 0; }
int nvmlDeviceGetMemoryInfo(void *device, nvmlMemory_t *m) {
    m->total = 80ull << 30;
    m->used = 20ull << 30;
    m->free = m->total - m->used;
    return 0;
}
int nvmlDeviceGetTemperatureV(void *device, nvmlTemperature_v1_t *t) {
    if (t->version != (12u | 1u << 24) || t->sensorType != 0) return 2;
    t->temperature = 61;
    return 0;
}
