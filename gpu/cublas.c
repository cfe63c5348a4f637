/* cuBLAS device bodies of the linear algebra tile kernels (linalg/kernels_cpu.c's gemm for
 * now). cuBLAS is loaded (dlopen) at the first GPU task that needs it: linking it would cost
 * every dagr program about 0.5 s and 200 MB at start, GPU or not. Each device worker thread
 * (one per GPU) keeps a cuBLAS handle of its own, bound to the task's stream at each call. On
 * a test device (no stream) a body answers DAGR_TASK_NEXT and the CPU body runs. Built only
 * with CUDA. */
#include "linalg_impl.h"

#include <cublas_v2.h>
#include <dlfcn.h>
#include <pthread.h>

typedef struct cublas_fns {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*dgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const double *, const double *, int, const double *, int,
                            const double *, double *, int);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const float *, const float *, int, const float *, int, const float *,
                            float *, int);
    const char *(*status_string)(cublasStatus_t);
} cublas_fns_t;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static cublas_fns_t fns;
static char load_err[256];

static void load(void) {
    void *h = dlopen("libcublas.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libcublas.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_err, sizeof load_err, "cannot load cuBLAS: %s", dlerror());
        return;
    }
    struct {
        void **slot;
        const char *name;
    } sym[] = {{(void **)&fns.create, "cublasCreate_v2"},
               {(void **)&fns.set_stream, "cublasSetStream_v2"},
               {(void **)&fns.dgemm, "cublasDgemm_v2"},
               {(void **)&fns.sgemm, "cublasSgemm_v2"},
               {(void **)&fns.status_string, "cublasGetStatusString"}};
    for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++) {
        *sym[i].slot = dlsym(h, sym[i].name);
        if (!*sym[i].slot) {
            snprintf(load_err, sizeof load_err, "cuBLAS has no %s", sym[i].name);
            return;
        }
    }
}

static _Thread_local cublasHandle_t handle;

/* This thread's handle on the task's stream, or NULL with the task failed. */
static cublasHandle_t task_handle(const dagr_task_view_t *t) {
    pthread_once(&once, load);
    if (load_err[0]) {
        dagr_task_fail(t, DAGR_ERR_GPU, "%s", load_err);
        return NULL;
    }
    cublasStatus_t s = handle ? CUBLAS_STATUS_SUCCESS : fns.create(&handle);
    if (s == CUBLAS_STATUS_SUCCESS) s = fns.set_stream(handle, (cudaStream_t)t->stream);
    if (s != CUBLAS_STATUS_SUCCESS) {
        dagr_task_fail(t, DAGR_ERR_GPU, "cuBLAS handle: %s", fns.status_string(s));
        return NULL;
    }
    return handle;
}

static cublasOperation_t op(int32_t t) {
    return t == DAGR_TRANS ? CUBLAS_OP_T : CUBLAS_OP_N;
}

dagr_task_result_t la_gemm_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT; /* a test device: the CPU body */
    const tile_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    int m = (int)o->m, n = (int)o->n, k = (int)o->k;
    int ldc = (int)t->ld[0], lda = (int)t->ld[1], ldb = (int)t->ld[2];
    cublasStatus_t s;
    if (o->dtype == DAGR_DOUBLE) {
        s = fns.dgemm(h, op(o->ta), op(o->tb), m, n, k, &o->alpha, t->buf[1], lda, t->buf[2], ldb,
                      &o->beta, t->buf[0], ldc);
    } else {
        float alpha = (float)o->alpha, beta = (float)o->beta;
        s = fns.sgemm(h, op(o->ta), op(o->tb), m, n, k, &alpha, t->buf[1], lda, t->buf[2], ldb,
                      &beta, t->buf[0], ldc);
    }
    if (s != CUBLAS_STATUS_SUCCESS) {
        dagr_task_fail(t, DAGR_ERR_GPU, "cuBLAS gemm (%d x %d x %d): %s", m, n, k,
                       fns.status_string(s));
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}
