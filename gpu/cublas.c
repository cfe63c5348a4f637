/* cuBLAS device bodies of the linear algebra tile kernels (linalg/kernels_cpu.c's BLAS 3
 * ones: gemm, syrk, symm, trsm, trmm; same buffers and arguments as there). cuBLAS is loaded
 * (dlopen) at the first GPU task that needs it: linking it would cost every dagr program about 0.5
 * s and 200 MB at start, GPU or not. Each device worker thread (one per GPU) keeps a cuBLAS handle
 * of its own, bound to the task's stream at each call. On a test device (no stream) a body answers
 * DAGR_TASK_NEXT and the CPU body runs. Built only with CUDA. */
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
    cublasStatus_t (*dsyrk)(cublasHandle_t, cublasFillMode_t, cublasOperation_t, int, int,
                            const double *, const double *, int, const double *, double *, int);
    cublasStatus_t (*ssyrk)(cublasHandle_t, cublasFillMode_t, cublasOperation_t, int, int,
                            const float *, const float *, int, const float *, float *, int);
    cublasStatus_t (*dsymm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t, int, int,
                            const double *, const double *, int, const double *, int,
                            const double *, double *, int);
    cublasStatus_t (*ssymm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t, int, int,
                            const float *, const float *, int, const float *, int, const float *,
                            float *, int);
    cublasStatus_t (*dtrsm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t, cublasOperation_t,
                            cublasDiagType_t, int, int, const double *, const double *, int,
                            double *, int);
    cublasStatus_t (*strsm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t, cublasOperation_t,
                            cublasDiagType_t, int, int, const float *, const float *, int, float *,
                            int);
    cublasStatus_t (*dtrmm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t, cublasOperation_t,
                            cublasDiagType_t, int, int, const double *, const double *, int,
                            const double *, int, double *, int);
    cublasStatus_t (*strmm)(cublasHandle_t, cublasSideMode_t, cublasFillMode_t, cublasOperation_t,
                            cublasDiagType_t, int, int, const float *, const float *, int,
                            const float *, int, float *, int);
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
               {(void **)&fns.dsyrk, "cublasDsyrk_v2"},
               {(void **)&fns.ssyrk, "cublasSsyrk_v2"},
               {(void **)&fns.dsymm, "cublasDsymm_v2"},
               {(void **)&fns.ssymm, "cublasSsymm_v2"},
               {(void **)&fns.dtrsm, "cublasDtrsm_v2"},
               {(void **)&fns.strsm, "cublasStrsm_v2"},
               {(void **)&fns.dtrmm, "cublasDtrmm_v2"},
               {(void **)&fns.strmm, "cublasStrmm_v2"},
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
static cublasFillMode_t fill(int32_t u) {
    return u == DAGR_UPPER ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
}
static cublasSideMode_t side(int32_t s) {
    return s == DAGR_RIGHT ? CUBLAS_SIDE_RIGHT : CUBLAS_SIDE_LEFT;
}
static cublasDiagType_t diag(int32_t d) {
    return d == DAGR_UNIT ? CUBLAS_DIAG_UNIT : CUBLAS_DIAG_NON_UNIT;
}

/* The body's end: done, or the task failed with cuBLAS's status. */
static dagr_task_result_t done(const dagr_task_view_t *t, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return DAGR_TASK_DONE;
    const tile_op_t *o = t->args;
    dagr_task_fail(t, DAGR_ERR_GPU, "cuBLAS %s (m %lld, n %lld, k %lld): %s", what, (long long)o->m,
                   (long long)o->n, (long long)o->k, fns.status_string(s));
    return DAGR_TASK_ERROR;
}
#define LDI(t, i) ((int)(t)->ld[i])

dagr_task_result_t la_gemm_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT; /* a test device: the CPU body */
    const tile_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    int m = (int)o->m, n = (int)o->n, k = (int)o->k;
    int ldc = LDI(t, 0), lda = LDI(t, 1), ldb = LDI(t, 2);
    cublasStatus_t s;
    if (o->dtype == DAGR_DOUBLE) {
        s = fns.dgemm(h, op(o->ta), op(o->tb), m, n, k, &o->alpha, t->buf[1], lda, t->buf[2], ldb,
                      &o->beta, t->buf[0], ldc);
    } else {
        float alpha = (float)o->alpha, beta = (float)o->beta;
        s = fns.sgemm(h, op(o->ta), op(o->tb), m, n, k, &alpha, t->buf[1], lda, t->buf[2], ldb,
                      &beta, t->buf[0], ldc);
    }
    return done(t, s, "gemm");
}

dagr_task_result_t la_syrk_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const tile_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    int n = (int)o->n, k = (int)o->k;
    cublasStatus_t s;
    if (o->dtype == DAGR_DOUBLE) {
        s = fns.dsyrk(h, fill(o->uplo), op(o->ta), n, k, &o->alpha, t->buf[1], LDI(t, 1), &o->beta,
                      t->buf[0], LDI(t, 0));
    } else {
        float alpha = (float)o->alpha, beta = (float)o->beta;
        s = fns.ssyrk(h, fill(o->uplo), op(o->ta), n, k, &alpha, t->buf[1], LDI(t, 1), &beta,
                      t->buf[0], LDI(t, 0));
    }
    return done(t, s, "syrk");
}

dagr_task_result_t la_symm_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const tile_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    int m = (int)o->m, n = (int)o->n;
    cublasStatus_t s;
    if (o->dtype == DAGR_DOUBLE) {
        s = fns.dsymm(h, side(o->side), fill(o->uplo), m, n, &o->alpha, t->buf[1], LDI(t, 1),
                      t->buf[2], LDI(t, 2), &o->beta, t->buf[0], LDI(t, 0));
    } else {
        float alpha = (float)o->alpha, beta = (float)o->beta;
        s = fns.ssymm(h, side(o->side), fill(o->uplo), m, n, &alpha, t->buf[1], LDI(t, 1),
                      t->buf[2], LDI(t, 2), &beta, t->buf[0], LDI(t, 0));
    }
    return done(t, s, "symm");
}

dagr_task_result_t la_trsm_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const tile_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    int m = (int)o->m, n = (int)o->n;
    cublasStatus_t s;
    if (o->dtype == DAGR_DOUBLE) {
        s = fns.dtrsm(h, side(o->side), fill(o->uplo), op(o->ta), diag(o->diag), m, n, &o->alpha,
                      t->buf[1], LDI(t, 1), t->buf[0], LDI(t, 0));
    } else {
        float alpha = (float)o->alpha;
        s = fns.strsm(h, side(o->side), fill(o->uplo), op(o->ta), diag(o->diag), m, n, &alpha,
                      t->buf[1], LDI(t, 1), t->buf[0], LDI(t, 0));
    }
    return done(t, s, "trsm");
}

/* cuBLAS's trmm writes C from B; with C = B it works in place, as BLAS's does. */
dagr_task_result_t la_trmm_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const tile_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    int m = (int)o->m, n = (int)o->n;
    cublasStatus_t s;
    if (o->dtype == DAGR_DOUBLE) {
        s = fns.dtrmm(h, side(o->side), fill(o->uplo), op(o->ta), diag(o->diag), m, n, &o->alpha,
                      t->buf[1], LDI(t, 1), t->buf[0], LDI(t, 0), t->buf[0], LDI(t, 0));
    } else {
        float alpha = (float)o->alpha;
        s = fns.strmm(h, side(o->side), fill(o->uplo), op(o->ta), diag(o->diag), m, n, &alpha,
                      t->buf[1], LDI(t, 1), t->buf[0], LDI(t, 0), t->buf[0], LDI(t, 0));
    }
    return done(t, s, "trmm");
}
