/* cuBLAS device bodies of the linear algebra tile kernels (linalg/kernels_cpu.c's BLAS 3
 * ones: gemm, syrk, symm, trsm, trmm; same buffers and arguments as there), and of the tile
 * updates of LU (lu_swap, lu_copy) and QR (gemqrt, tpmqrt through linalg/qr_blocked.c's
 * gemm-based form; the LAPACK-form variant's qr_w and qr_wsum). cuBLAS is loaded
 * (dlopen) at the first GPU task that needs it: linking it would cost every dagr program about 0.5
 * s and 200 MB at start, GPU or not. Each device worker thread (one per GPU) keeps a cuBLAS handle
 * of its own, bound to the task's stream at each call, and the device scratch of the QR updates
 * (grown when a task needs more, never shrunk). On a test device (no stream) a body answers
 * DAGR_TASK_NEXT and the CPU body runs. Built only with CUDA. */
#include "linalg_impl.h"
#include "qr_blocked.h"
#include "qr_impl.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

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
    cublasStatus_t (*dgeam)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                            const double *, const double *, int, const double *, const double *,
                            int, double *, int);
    cublasStatus_t (*sgeam)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                            const float *, const float *, int, const float *, const float *, int,
                            float *, int);
    cublasStatus_t (*dswap)(cublasHandle_t, int, double *, int, double *, int);
    cublasStatus_t (*sswap)(cublasHandle_t, int, float *, int, float *, int);
    const char *(*status_string)(cublasStatus_t);
} cublas_fns_t;

#define DAGR_STR_(x) #x
#define DAGR_STR(x) DAGR_STR_(x)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static cublas_fns_t fns;
static char load_err[256];

static void load(void) {
    /* The soname of the version built against (the headers'), then any. */
    void *h = dlopen("libcublas.so." DAGR_STR(CUBLAS_VER_MAJOR), RTLD_NOW | RTLD_LOCAL);
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
               {(void **)&fns.dgeam, "cublasDgeam"},
               {(void **)&fns.sgeam, "cublasSgeam"},
               {(void **)&fns.dswap, "cublasDswap_v2"},
               {(void **)&fns.sswap, "cublasSswap_v2"},
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

/* ---- the updates of LU and QR ---- */

/* This thread's device scratch (the QR updates' work block), grown when a task needs more. */
static _Thread_local void *scratch_buf;
static _Thread_local size_t scratch_bytes;
/* This thread's host copy of a pivot array (lu_swap). */
static _Thread_local int64_t *piv_host;
static _Thread_local size_t piv_count;

/* The state of qr_blocked.c's table on cuBLAS: the handle and stream of the task, and the first
 * failure (a cuBLAS status, or a CUDA error of the scratch's allocation) with what failed. */
typedef struct gpu_blas {
    cublasHandle_t h;
    cudaStream_t stream;
    cublasStatus_t status;
    cudaError_t cuda;
    const char *what;
} gpu_blas_t;

static int gb_check(gpu_blas_t *g, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    g->status = s;
    g->what = what;
    return 1;
}

static int gb_dgemm(void *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                    int64_t ldc) {
    gpu_blas_t *g = ctx;
    return gb_check(g,
                    fns.dgemm(g->h, op(ta), op(tb), (int)m, (int)n, (int)k, &alpha, a, (int)lda, b,
                              (int)ldb, &beta, c, (int)ldc),
                    "gemm");
}

static int gb_sgemm(void *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                    const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                    int64_t ldc) {
    gpu_blas_t *g = ctx;
    float al = (float)alpha, be = (float)beta;
    return gb_check(g,
                    fns.sgemm(g->h, op(ta), op(tb), (int)m, (int)n, (int)k, &al, a, (int)lda, b,
                              (int)ldb, &be, c, (int)ldc),
                    "gemm");
}

/* In place: cuBLAS's trmm writes C = op(A) B, here with C = B. */
static int gb_dtrmm(void *ctx, int sd, int uplo, int trans, int dg, int64_t m, int64_t n,
                    const void *a, int64_t lda, void *b, int64_t ldb) {
    gpu_blas_t *g = ctx;
    const double one = 1.0;
    return gb_check(g,
                    fns.dtrmm(g->h, side(sd), fill(uplo), op(trans), diag(dg), (int)m, (int)n, &one,
                              a, (int)lda, b, (int)ldb, b, (int)ldb),
                    "trmm");
}

static int gb_strmm(void *ctx, int sd, int uplo, int trans, int dg, int64_t m, int64_t n,
                    const void *a, int64_t lda, void *b, int64_t ldb) {
    gpu_blas_t *g = ctx;
    const float one = 1.0f;
    return gb_check(g,
                    fns.strmm(g->h, side(sd), fill(uplo), op(trans), diag(dg), (int)m, (int)n, &one,
                              a, (int)lda, b, (int)ldb, b, (int)ldb),
                    "trmm");
}

/* With beta == 0, B is zeroed first: cuBLAS does not promise that geam leaves B unread then,
 * and B may be scratch memory holding NaNs, which 0 * NaN would keep. */
static int gb_clear_unread(gpu_blas_t *g, double beta, void *b, int64_t ldb, int64_t m, int64_t n,
                           size_t es) {
    if (beta != 0 || m == 0 || n == 0) return 0;
    cudaError_t e = cudaMemset2DAsync(b, (size_t)ldb * es, 0, (size_t)m * es, (size_t)n, g->stream);
    if (e == cudaSuccess) return 0;
    g->cuda = e;
    g->what = "cudaMemset2DAsync";
    return 1;
}

/* B = alpha A + beta B by geam, in place (C = B, allowed with transb N and ldc = ldb). */
static int gb_dadd(void *ctx, int64_t m, int64_t n, double alpha, const void *a, int64_t lda,
                   double beta, void *b, int64_t ldb) {
    gpu_blas_t *g = ctx;
    if (gb_clear_unread(g, beta, b, ldb, m, n, sizeof(double))) return 1;
    return gb_check(g,
                    fns.dgeam(g->h, CUBLAS_OP_N, CUBLAS_OP_N, (int)m, (int)n, &alpha, a, (int)lda,
                              &beta, b, (int)ldb, b, (int)ldb),
                    "geam");
}

static int gb_sadd(void *ctx, int64_t m, int64_t n, double alpha, const void *a, int64_t lda,
                   double beta, void *b, int64_t ldb) {
    gpu_blas_t *g = ctx;
    float al = (float)alpha, be = (float)beta;
    if (gb_clear_unread(g, beta, b, ldb, m, n, sizeof(float))) return 1;
    return gb_check(g,
                    fns.sgeam(g->h, CUBLAS_OP_N, CUBLAS_OP_N, (int)m, (int)n, &al, a, (int)lda, &be,
                              b, (int)ldb, b, (int)ldb),
                    "geam");
}

/* Grows this thread's scratch to `bytes` (rounded up to 1 MiB). The old block may still be read
 * by work queued on the stream (an earlier task's, were the runtime ever to overlap them), so
 * the stream is drained before it is freed. */
static void *gb_scratch(void *ctx, size_t bytes) {
    gpu_blas_t *g = ctx;
    if (bytes <= scratch_bytes) return scratch_buf;
    size_t want = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    cudaError_t e = cudaStreamSynchronize(g->stream);
    if (e == cudaSuccess && scratch_buf) e = cudaFree(scratch_buf);
    scratch_buf = NULL;
    scratch_bytes = 0;
    if (e == cudaSuccess) e = cudaMalloc(&scratch_buf, want);
    if (e != cudaSuccess) {
        scratch_buf = NULL;
        g->cuda = e;
        g->what = "the device scratch";
        (void)cudaGetLastError(); /* not sticky for the next call */
        return NULL;
    }
    scratch_bytes = want;
    return scratch_buf;
}

/* qr_blocked.c's table on this task's handle and stream. */
static void gpu_blas_init(qr_blas_t *b, gpu_blas_t *g, cublasHandle_t h, const dagr_task_view_t *t,
                          int32_t dtype) {
    *g = (gpu_blas_t){.h = h, .stream = (cudaStream_t)t->stream};
    bool d = dtype == DAGR_DOUBLE;
    *b = (qr_blas_t){.ctx = g,
                     .dtype = dtype,
                     .gemm = d ? gb_dgemm : gb_sgemm,
                     .trmm = d ? gb_dtrmm : gb_strmm,
                     .add = d ? gb_dadd : gb_sadd,
                     .scratch = gb_scratch};
}

/* Fails the task with the first failure g recorded, in kernel `name` (its shape in `shape`). */
static dagr_task_result_t gb_failed(const dagr_task_view_t *t, const gpu_blas_t *g,
                                    const char *name, const char *shape) {
    if (g->cuda != cudaSuccess)
        dagr_task_fail(t, DAGR_ERR_GPU, "%s (%s): CUDA, %s: %s (%s)", name, shape, g->what,
                       cudaGetErrorName(g->cuda), cudaGetErrorString(g->cuda));
    else
        dagr_task_fail(t, DAGR_ERR_GPU, "cuBLAS %s in %s (%s): %s", g->what ? g->what : "call",
                       name, shape, fns.status_string(g->status));
    return DAGR_TASK_ERROR;
}

static dagr_task_result_t qr_failed(const dagr_task_view_t *t, const gpu_blas_t *g,
                                    const char *name) {
    const qr_op_t *o = t->args;
    char shape[128];
    snprintf(shape, sizeof shape, "m %lld, n %lld, k %lld, l %lld, ib %lld", (long long)o->m,
             (long long)o->n, (long long)o->k, (long long)o->l, (long long)o->ib);
    return gb_failed(t, g, name, shape);
}

/* The inner block size the CPU kernels use (kernels_qr.c's ib_for): T was written with it. */
static int64_t qr_ib(int64_t ib, int64_t k) {
    return ib < 1 ? 1 : ib > k ? k : ib;
}

/* gemqrt (buffers 0 = C, 1 = V, 2 = T) as LAPACK's, in qr_blocked.c's gemm-based form. */
dagr_task_result_t la_gemqrt_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const qr_op_t *o = t->args;
    if (o->k == 0 || o->m == 0 || o->n == 0) return DAGR_TASK_DONE;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    qr_blas_t b;
    gpu_blas_t g;
    gpu_blas_init(&b, &g, h, t, o->dtype);
    int rc = qr_blocked_gemqrt(&b, o->side, o->trans, o->m, o->n, o->k, qr_ib(o->ib, o->k),
                               t->buf[1], (int64_t)t->ld[1], t->buf[2], (int64_t)t->ld[2],
                               t->buf[0], (int64_t)t->ld[0]);
    return rc == 0 ? DAGR_TASK_DONE : qr_failed(t, &g, "gemqrt");
}

/* tpmqrt (buffers 0 = B, 1 = A, 2 = V, 3 = T) as LAPACK's, in qr_blocked.c's form. */
dagr_task_result_t la_tpmqrt_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const qr_op_t *o = t->args;
    if (o->k == 0 || o->m == 0 || o->n == 0) return DAGR_TASK_DONE;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    qr_blas_t b;
    gpu_blas_t g;
    gpu_blas_init(&b, &g, h, t, o->dtype);
    int rc = qr_blocked_tpmqrt(&b, o->side, o->trans, o->m, o->n, o->k, o->l, qr_ib(o->ib, o->k),
                               t->buf[2], (int64_t)t->ld[2], t->buf[3], (int64_t)t->ld[3],
                               t->buf[1], (int64_t)t->ld[1], t->buf[0], (int64_t)t->ld[0]);
    return rc == 0 ? DAGR_TASK_DONE : qr_failed(t, &g, "tpmqrt");
}

static dagr_task_result_t hh_failed(const dagr_task_view_t *t, const gpu_blas_t *g,
                                    const char *name) {
    const hh_op_t *o = t->args;
    char shape[96];
    snprintf(shape, sizeof shape, "kk %lld, nfree %lld, %d blocks", (long long)o->kk,
             (long long)o->nfree, (int)o->ntiles);
    return gb_failed(t, g, name, shape);
}

/* W = op(T) W (LEFT, W kk x nfree) or W op(T) (RIGHT, W nfree x kk), as kernels_qr.c's
 * apply_t. */
static int hh_apply_t(const qr_blas_t *b, const hh_op_t *o, const void *tm, size_t ldt, void *w,
                      size_t ldw) {
    int64_t m = o->side == DAGR_RIGHT ? o->nfree : o->kk;
    int64_t n = o->side == DAGR_RIGHT ? o->kk : o->nfree;
    if (m == 0 || n == 0) return 0;
    return b->trmm(b->ctx, o->side, DAGR_UPPER, o->trans, DAGR_NON_UNIT, m, n, tm, (int64_t)ldt, w,
                   (int64_t)ldw);
}

/* qr_w of the LAPACK-form QR (qr_impl.h): W (+)= sum V_s^T C_s or C_s V_s, then op(T). */
dagr_task_result_t la_qr_hh_w_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const hh_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    qr_blas_t b;
    gpu_blas_t g;
    gpu_blas_init(&b, &g, h, t, o->dtype);
    int p0 = o->apply_t ? 2 : 1, rc = 0;
    bool left = o->side != DAGR_RIGHT;
    int64_t m = left ? o->kk : o->nfree, n = left ? o->nfree : o->kk;
    for (int32_t s = 0; s < o->ntiles && rc == 0 && m > 0 && n > 0; s++) {
        int iv = p0 + 2 * s, ic = iv + 1;
        int64_t rows = s == o->ntiles - 1 ? o->last_rows : o->nb;
        double beta = s == 0 && !o->accumulate ? 0.0 : 1.0;
        if (rows == 0 && beta == 1.0) continue;
        if (left) /* W (kk x nfree) += V_s^T C_s */
            rc = b.gemm(&g, DAGR_TRANS, DAGR_NO_TRANS, m, n, rows, 1.0, t->buf[iv],
                        (int64_t)t->ld[iv], t->buf[ic], (int64_t)t->ld[ic], beta, t->buf[0],
                        (int64_t)t->ld[0]);
        else /* W (nfree x kk) += C_s V_s */
            rc = b.gemm(&g, DAGR_NO_TRANS, DAGR_NO_TRANS, m, n, rows, 1.0, t->buf[ic],
                        (int64_t)t->ld[ic], t->buf[iv], (int64_t)t->ld[iv], beta, t->buf[0],
                        (int64_t)t->ld[0]);
    }
    if (rc == 0 && o->apply_t) rc = hh_apply_t(&b, o, t->buf[1], t->ld[1], t->buf[0], t->ld[0]);
    return rc == 0 ? DAGR_TASK_DONE : hh_failed(t, &g, "qr_w");
}

/* qr_wsum: Y = the sum of the ntiles partial blocks (buffers 2..), then op(T) (buffer 1). */
dagr_task_result_t la_qr_hh_sum_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const hh_op_t *o = t->args;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    qr_blas_t b;
    gpu_blas_t g;
    gpu_blas_init(&b, &g, h, t, o->dtype);
    bool left = o->side != DAGR_RIGHT;
    int64_t m = left ? o->kk : o->nfree, n = left ? o->nfree : o->kk;
    int rc = 0;
    for (int32_t s = 0; s < o->ntiles && rc == 0 && m > 0 && n > 0; s++)
        rc = b.add(&g, m, n, 1.0, t->buf[2 + s], (int64_t)t->ld[2 + s], s == 0 ? 0.0 : 1.0,
                   t->buf[0], (int64_t)t->ld[0]);
    if (rc == 0) rc = hh_apply_t(&b, o, t->buf[1], t->ld[1], t->buf[0], t->ld[0]);
    return rc == 0 ? DAGR_TASK_DONE : hh_failed(t, &g, "qr_wsum");
}

/* Fails an LU task (kernel `name`) with a cuBLAS status or, when e is set, a CUDA error. */
static dagr_task_result_t lu_failed(const dagr_task_view_t *t, const char *name, const char *what,
                                    cublasStatus_t s, cudaError_t e) {
    const lu_op_t *o = t->args;
    if (e != cudaSuccess) {
        dagr_task_fail(t, DAGR_ERR_GPU, "%s (%d tiles, %lld columns): CUDA, %s: %s (%s)", name,
                       (int)o->ntiles, (long long)o->cols, what, cudaGetErrorName(e),
                       cudaGetErrorString(e));
        (void)cudaGetLastError(); /* not sticky for the next call */
    } else {
        dagr_task_fail(t, DAGR_ERR_GPU, "cuBLAS %s in %s (%lld pivots, %lld columns): %s", what,
                       name, (long long)o->npiv, (long long)o->cols, fns.status_string(s));
    }
    return DAGR_TASK_ERROR;
}

/* Row r (0-based in the stack) of a stack of device tiles: its first element, and its tile's
 * leading dimension (the stride from one column to the next). */
static char *stack_row(const dagr_task_view_t *t, const lu_op_t *o, size_t es, int64_t r, int *ld) {
    int64_t ti = r / o->nb;
    *ld = (int)t->ld[ti];
    return (char *)t->buf[ti] + (size_t)(r % o->nb) * es;
}

/* lu_swap (linalg_impl.h): the interchanges, one cuBLAS swap of two rows (stride ld) each, then
 * the solve of the top rows. The row addresses are computed on the host, so the pivots (a small
 * handle the CPU panel wrote, npiv int64) come back first: one copy and one wait on the stream
 * per task. */
dagr_task_result_t la_lu_swap_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const lu_op_t *o = t->args;
    if (o->npiv == 0 || o->cols == 0) return DAGR_TASK_DONE;
    cublasHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    cudaStream_t st = (cudaStream_t)t->stream;
    size_t es = o->dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    size_t npiv = (size_t)o->npiv;
    if (t->bytes[o->ntiles] < npiv * sizeof(int64_t)) {
        dagr_task_fail(t, DAGR_ERR_INTERNAL, "lu_swap: %zu bytes of pivots for %zu interchanges",
                       t->bytes[o->ntiles], npiv);
        return DAGR_TASK_ERROR;
    }
    if (npiv > piv_count) {
        int64_t *p = realloc(piv_host, npiv * sizeof *p);
        if (!p) {
            dagr_task_fail(t, DAGR_ERR_NOMEM, "lu_swap: no memory for %zu pivots", npiv);
            return DAGR_TASK_ERROR;
        }
        piv_host = p;
        piv_count = npiv;
    }
    cudaError_t e = cudaMemcpyAsync(piv_host, t->buf[o->ntiles], npiv * sizeof(int64_t),
                                    cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess)
        return lu_failed(t, "lu_swap", "the pivots to the host", CUBLAS_STATUS_SUCCESS, e);
    int64_t rows = (int64_t)(o->ntiles - 1) * o->nb + o->last_rows;
    int cols = (int)o->cols;
    for (int64_t s = 0; s < o->npiv; s++) {
        int64_t i = o->reverse ? o->npiv - 1 - s : s;
        int64_t p = piv_host[i] - o->row0;
        if (p == i) continue;
        if (p < 0 || p >= rows) {
            dagr_task_fail(t, DAGR_ERR_INTERNAL,
                           "lu_swap: pivot %lld of row %lld is outside the stack of %lld rows",
                           (long long)piv_host[i], (long long)(o->row0 + i), (long long)rows);
            return DAGR_TASK_ERROR;
        }
        int ldx, ldy;
        char *x = stack_row(t, o, es, i, &ldx), *y = stack_row(t, o, es, p, &ldy);
        cublasStatus_t cs = o->dtype == DAGR_DOUBLE
                                ? fns.dswap(h, cols, (double *)x, ldx, (double *)y, ldy)
                                : fns.sswap(h, cols, (float *)x, ldx, (float *)y, ldy);
        if (cs != CUBLAS_STATUS_SUCCESS) return lu_failed(t, "lu_swap", "swap", cs, cudaSuccess);
    }
    if (o->trsm) {
        int k = o->ntiles + 1;
        cublasStatus_t cs;
        if (o->dtype == DAGR_DOUBLE) {
            const double one = 1.0;
            cs = fns.dtrsm(h, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                           CUBLAS_DIAG_UNIT, (int)o->npiv, cols, &one, t->buf[k], LDI(t, k),
                           t->buf[0], LDI(t, 0));
        } else {
            const float one = 1.0f;
            cs = fns.strsm(h, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                           CUBLAS_DIAG_UNIT, (int)o->npiv, cols, &one, t->buf[k], LDI(t, k),
                           t->buf[0], LDI(t, 0));
        }
        if (cs != CUBLAS_STATUS_SUCCESS) return lu_failed(t, "lu_swap", "trsm", cs, cudaSuccess);
    }
    return DAGR_TASK_DONE;
}

/* lu_copy (linalg_impl.h): each tile to or from its rows of W, one 2-D copy on the stream. */
dagr_task_result_t la_lu_copy_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const lu_op_t *o = t->args;
    cudaStream_t st = (cudaStream_t)t->stream;
    size_t es = o->dtype == DAGR_DOUBLE ? sizeof(double) : sizeof(float);
    char *w = t->buf[o->ntiles];
    size_t wpitch = t->ld[o->ntiles] * es;
    for (int32_t ti = 0; ti < o->ntiles && o->cols > 0; ti++) {
        int64_t rows = ti == o->ntiles - 1 ? o->last_rows : o->nb;
        if (rows == 0) continue;
        char *tile = t->buf[ti];
        size_t tpitch = t->ld[ti] * es;
        char *wc = w + (size_t)(o->woff + ti * o->nb) * es;
        cudaError_t e = o->gather
                            ? cudaMemcpy2DAsync(wc, wpitch, tile, tpitch, (size_t)rows * es,
                                                (size_t)o->cols, cudaMemcpyDeviceToDevice, st)
                            : cudaMemcpy2DAsync(tile, tpitch, wc, wpitch, (size_t)rows * es,
                                                (size_t)o->cols, cudaMemcpyDeviceToDevice, st);
        if (e != cudaSuccess)
            return lu_failed(t, "lu_copy", "cudaMemcpy2DAsync", CUBLAS_STATUS_SUCCESS, e);
    }
    return DAGR_TASK_DONE;
}
