/* cuSOLVER device body of the potrf tile kernel (linalg/kernels_cpu.c's k_potrf: the same
 * buffer, argument and failures). cuSOLVER is loaded (dlopen) at the first GPU task that needs
 * it, as cuBLAS is (gpu/cublas.c). Each device worker thread (one per GPU) keeps its own dense
 * handle, bound to the task's stream at each call, its own workspace (grown when a tile needs
 * more, never shrunk) and its own device int for cuSOLVER's info. On a test device (no stream)
 * the body answers DAGR_TASK_NEXT and the CPU body runs. Built only with CUDA.
 *
 * The body waits for its stream once: a potrf that fails must fail its task (dagr_potrf stops
 * there and reports the column), so info and the factor's diagonal come back to the host and
 * are judged as the CPU body judges LAPACK's. That costs one wait per diagonal tile, on the
 * critical path anyway. */
#include "linalg_impl.h"

#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cusolver_fns {
    cusolverStatus_t (*create)(cusolverDnHandle_t *);
    cusolverStatus_t (*set_stream)(cusolverDnHandle_t, cudaStream_t);
    cusolverStatus_t (*dpotrf_size)(cusolverDnHandle_t, cublasFillMode_t, int, double *, int,
                                    int *);
    cusolverStatus_t (*spotrf_size)(cusolverDnHandle_t, cublasFillMode_t, int, float *, int, int *);
    cusolverStatus_t (*dpotrf)(cusolverDnHandle_t, cublasFillMode_t, int, double *, int, double *,
                               int, int *);
    cusolverStatus_t (*spotrf)(cusolverDnHandle_t, cublasFillMode_t, int, float *, int, float *,
                               int, int *);
} cusolver_fns_t;

#define DAGR_STR_(x) #x
#define DAGR_STR(x) DAGR_STR_(x)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static cusolver_fns_t fns;
static char load_err[256];

static void load(void) {
    /* The soname of the version built against (the headers'), then any. */
    void *h = dlopen("libcusolver.so." DAGR_STR(CUSOLVER_VER_MAJOR), RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libcusolver.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_err, sizeof load_err, "cannot load cuSOLVER: %s", dlerror());
        return;
    }
    struct {
        void **slot;
        const char *name;
    } sym[] = {{(void **)&fns.create, "cusolverDnCreate"},
               {(void **)&fns.set_stream, "cusolverDnSetStream"},
               {(void **)&fns.dpotrf_size, "cusolverDnDpotrf_bufferSize"},
               {(void **)&fns.spotrf_size, "cusolverDnSpotrf_bufferSize"},
               {(void **)&fns.dpotrf, "cusolverDnDpotrf"},
               {(void **)&fns.spotrf, "cusolverDnSpotrf"}};
    for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++) {
        *sym[i].slot = dlsym(h, sym[i].name);
        if (!*sym[i].slot) {
            snprintf(load_err, sizeof load_err, "cuSOLVER has no %s", sym[i].name);
            return;
        }
    }
}

/* cuSOLVER has no message function: its statuses by name. */
static const char *status_str(cusolverStatus_t s) {
    switch (s) {
    case CUSOLVER_STATUS_SUCCESS:
        return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED:
        return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED:
        return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE:
        return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH:
        return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_MAPPING_ERROR:
        return "CUSOLVER_STATUS_MAPPING_ERROR";
    case CUSOLVER_STATUS_EXECUTION_FAILED:
        return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR:
        return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
        return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED:
        return "CUSOLVER_STATUS_NOT_SUPPORTED";
    case CUSOLVER_STATUS_INVALID_WORKSPACE:
        return "CUSOLVER_STATUS_INVALID_WORKSPACE";
    default:
        return "a cuSOLVER status without a name here";
    }
}

/* This thread's handle, workspace, device info and host copy of a diagonal. */
static _Thread_local cusolverDnHandle_t handle;
static _Thread_local void *work;
static _Thread_local size_t work_bytes;
static _Thread_local int *dev_info;
static _Thread_local double *diag_host; /* room for n doubles: a float diagonal fits too */
static _Thread_local size_t diag_count;

static dagr_task_result_t solver_failed(const dagr_task_view_t *t, const char *what,
                                        cusolverStatus_t s) {
    const tile_op_t *o = t->args;
    dagr_task_fail(t, DAGR_ERR_GPU, "cuSOLVER %s in potrf (n %lld): %s", what, (long long)o->n,
                   status_str(s));
    return DAGR_TASK_ERROR;
}

static dagr_task_result_t cuda_failed(const dagr_task_view_t *t, const char *what, cudaError_t e) {
    const tile_op_t *o = t->args;
    dagr_task_fail(t, DAGR_ERR_GPU, "potrf (n %lld): CUDA, %s: %s (%s)", (long long)o->n, what,
                   cudaGetErrorName(e), cudaGetErrorString(e));
    (void)cudaGetLastError(); /* not sticky for the next call */
    return DAGR_TASK_ERROR;
}

/* This thread's handle on the task's stream (and its device info), or NULL with the task
 * failed. */
static cusolverDnHandle_t task_handle(const dagr_task_view_t *t) {
    pthread_once(&once, load);
    if (load_err[0]) {
        dagr_task_fail(t, DAGR_ERR_GPU, "%s", load_err);
        return NULL;
    }
    cusolverStatus_t s = handle ? CUSOLVER_STATUS_SUCCESS : fns.create(&handle);
    if (s == CUSOLVER_STATUS_SUCCESS) s = fns.set_stream(handle, (cudaStream_t)t->stream);
    if (s != CUSOLVER_STATUS_SUCCESS) {
        solver_failed(t, "handle", s);
        return NULL;
    }
    if (!dev_info) {
        cudaError_t e = cudaMalloc((void **)&dev_info, sizeof *dev_info);
        if (e != cudaSuccess) {
            dev_info = NULL;
            cuda_failed(t, "cudaMalloc of the info", e);
            return NULL;
        }
    }
    return handle;
}

/* This thread's workspace of at least `bytes`, or NULL with the task failed. The old one is
 * freed after the stream has drained (a potrf queued before may still use it). */
static void *task_work(const dagr_task_view_t *t, size_t bytes) {
    if (bytes <= work_bytes && work) return work;
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)t->stream);
    if (e == cudaSuccess && work) e = cudaFree(work);
    work = NULL;
    work_bytes = 0;
    if (e == cudaSuccess) e = cudaMalloc(&work, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        work = NULL;
        cuda_failed(t, "the workspace", e);
        return NULL;
    }
    work_bytes = bytes;
    return work;
}

/* potrf (linalg_impl.h): A = L L^T or U^T U on uplo, failing as the CPU body does: not
 * positive definite (cuSOLVER's info > 0, LAPACK's meaning), or a non-finite diagonal of the
 * factor (a NaN or an Inf in the input, which a successful info does not exclude). */
dagr_task_result_t la_potrf_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT; /* a test device: the CPU body */
    const tile_op_t *o = t->args;
    if (o->n == 0) return DAGR_TASK_DONE;
    cusolverDnHandle_t h = task_handle(t);
    if (!h) return DAGR_TASK_ERROR;
    cudaStream_t st = (cudaStream_t)t->stream;
    bool dbl = o->dtype == DAGR_DOUBLE;
    size_t es = dbl ? sizeof(double) : sizeof(float);
    cublasFillMode_t uplo = o->uplo == DAGR_UPPER ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
    int n = (int)o->n, lda = (int)t->ld[0], lwork = 0;
    cusolverStatus_t s = dbl ? fns.dpotrf_size(h, uplo, n, t->buf[0], lda, &lwork)
                             : fns.spotrf_size(h, uplo, n, t->buf[0], lda, &lwork);
    if (s != CUSOLVER_STATUS_SUCCESS) return solver_failed(t, "potrf_bufferSize", s);
    void *w = task_work(t, (size_t)(lwork > 0 ? lwork : 1) * es);
    if (!w) return DAGR_TASK_ERROR;
    if ((size_t)n > diag_count) {
        double *d = realloc(diag_host, (size_t)n * sizeof *d);
        if (!d) {
            dagr_task_fail(t, DAGR_ERR_NOMEM, "potrf: no memory for a diagonal of %d", n);
            return DAGR_TASK_ERROR;
        }
        diag_host = d;
        diag_count = (size_t)n;
    }
    s = dbl ? fns.dpotrf(h, uplo, n, t->buf[0], lda, w, lwork, dev_info)
            : fns.spotrf(h, uplo, n, t->buf[0], lda, w, lwork, dev_info);
    if (s != CUSOLVER_STATUS_SUCCESS) return solver_failed(t, "potrf", s);
    /* info, and the diagonal (one element every lda + 1), back on the host */
    int info = 0;
    cudaError_t e = cudaMemcpyAsync(&info, dev_info, sizeof info, cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess)
        e = cudaMemcpy2DAsync(diag_host, es, t->buf[0], ((size_t)lda + 1) * es, es, (size_t)n,
                              cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) return cuda_failed(t, "info and the diagonal to the host", e);
    return la_potrf_verdict(t, o, info, diag_host, 1, "cuSOLVER");
}
