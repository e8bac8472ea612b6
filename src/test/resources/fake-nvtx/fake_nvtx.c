/*
 * A stand-in NVTX tool for the tests, injected as nsys injects itself: NVTX_INJECTION64_PATH names this library, and
 * the NVTX library calls InitializeInjectionNvtx2 at its first call. It takes over nvtxRangePushA, nvtxRangePop and
 * nvtxMarkA and writes one line per call to the file named by FAKE_NVTX_LOG:
 *   push DEPTH NAME   (DEPTH: the ranges open before it)
 *   pop DEPTH         (DEPTH: the ranges still open after it)
 *   mark NAME
 * The types and ids are those of nvtx3/nvtxDetail/nvtxTypes.h, restated so that the test needs no CUDA headers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*NvtxFunctionPointer)(void);
typedef NvtxFunctionPointer **NvtxFunctionTable;
typedef struct {
    size_t struct_size;
    int (*GetModuleFunctionTable)(int module, NvtxFunctionTable *out_table, unsigned int *out_size);
} NvtxExportTableCallbacks;
typedef const void *(*NvtxGetExportTableFunc_t)(uint32_t exportTableId);

enum { NVTX_ETID_CALLBACKS = 1, NVTX_CB_MODULE_CORE = 1 };
enum { NVTX_CBID_CORE_MarkA = 2, NVTX_CBID_CORE_RangePushA = 9, NVTX_CBID_CORE_RangePop = 11 };

static FILE *out;
static int depth;

static int range_push_a(const char *message) {
    fprintf(out, "push %d %s\n", depth, message);
    return depth++;
}

static int range_pop(void) {
    if (depth == 0) {
        fprintf(out, "pop without a range open\n");
        return -1;
    }
    fprintf(out, "pop %d\n", --depth);
    return depth;
}

static void mark_a(const char *message) {
    fprintf(out, "mark %s\n", message);
}

int InitializeInjectionNvtx2(NvtxGetExportTableFunc_t get_export_table) {
    const char *path = getenv("FAKE_NVTX_LOG");
    out = fopen(path != NULL ? path : "/dev/null", "w");
    if (out == NULL) {
        return 0;
    }
    setvbuf(out, NULL, _IOLBF, 0);
    const NvtxExportTableCallbacks *callbacks = get_export_table(NVTX_ETID_CALLBACKS);
    NvtxFunctionTable table;
    unsigned int size;
    if (callbacks == NULL || !callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &table, &size)
            || size <= NVTX_CBID_CORE_RangePop) {
        fprintf(out, "no core function table\n");
        return 0;
    }
    *table[NVTX_CBID_CORE_MarkA] = (NvtxFunctionPointer) mark_a;
    *table[NVTX_CBID_CORE_RangePushA] = (NvtxFunctionPointer) range_push_a;
    *table[NVTX_CBID_CORE_RangePop] = (NvtxFunctionPointer) range_pop;
    fprintf(out, "injected\n");
    return 1;
}
