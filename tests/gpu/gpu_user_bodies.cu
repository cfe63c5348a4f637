/* The CUDA device bodies of test_gpu_user.c (gpu_user_bodies.h). */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "gpu_user_bodies.h"

__global__ void axpy_index(long long n, double a, const double *x, double *y) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i] + (double)i;
}

__global__ void shift(double *x, long long ld, long long rows, long long cols, double alpha,
                      double beta, long long i0, long long j0) {
    long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    long long c = blockIdx.y * (long long)blockDim.y + threadIdx.y;
    if (r >= rows || c >= cols) return;
    double v = alpha * x[r + c * ld];
    if (i0 + r == j0 + c) v += beta;
    x[r + c * ld] = v;
}

/* A launch error is not sticky: the stream's sync after the body would not see it. */
static dagr_task_result_t launched(const dagr_task_view_t *t, const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return DAGR_TASK_DONE;
    dagr_task_fail(t, DAGR_ERR_GPU, "%s: %s (%s)", what, cudaGetErrorString(e),
                   cudaGetErrorName(e));
    return DAGR_TASK_ERROR;
}

extern "C" dagr_task_result_t user_axpy_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const user_axpy_args_t *a = (const user_axpy_args_t *)t->args;
    unsigned blocks = (unsigned)((a->n + 255) / 256);
    axpy_index<<<blocks, 256, 0, (cudaStream_t)t->stream>>>(
        a->n, a->a, (const double *)t->buf[0], (double *)t->buf[1]);
    return launched(t, "axpy_index<<<>>>");
}

extern "C" dagr_task_result_t user_shift_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    const user_shift_args_t *a = (const user_shift_args_t *)t->args;
    dim3 block(32, 8);
    dim3 grid((unsigned)((a->rows + 31) / 32), (unsigned)((a->cols + 7) / 8));
    shift<<<grid, block, 0, (cudaStream_t)t->stream>>>((double *)t->buf[0], (long long)t->ld[0],
                                                         a->rows, a->cols, a->alpha, a->beta,
                                                         a->i0, a->j0);
    return launched(t, "shift<<<>>>");
}

extern "C" dagr_task_result_t user_bad_launch_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    /* 4096 threads a block: more than any GPU allows (1024). */
    axpy_index<<<1, 4096, 0, (cudaStream_t)t->stream>>>(1, 1.0, (const double *)t->buf[0],
                                                         (double *)t->buf[0]);
    return launched(t, "axpy_index<<<1, 4096>>>");
}

extern "C" dagr_task_result_t user_bad_cublas_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT;
    cublasHandle_t h;
    cublasStatus_t s = cublasCreate(&h);
    if (s != CUBLAS_STATUS_SUCCESS) {
        dagr_task_fail(t, DAGR_ERR_GPU, "cublasCreate: %s", cublasGetStatusName(s));
        return DAGR_TASK_ERROR;
    }
    cublasSetStream(h, (cudaStream_t)t->stream);
    const double one = 1.0;
    double *x = (double *)t->buf[0];
    /* lda = 0 < m = 8: cuBLAS refuses the call before queueing anything. */
    s = cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, x, 0, x, 8, &one, x, 8);
    cudaStreamSynchronize((cudaStream_t)t->stream); /* before the handle goes */
    cublasDestroy(h);
    if (s != CUBLAS_STATUS_SUCCESS) {
        dagr_task_fail(t, DAGR_ERR_GPU, "cublasDgemm: %s (%s)", cublasGetStatusName(s),
                       cublasGetStatusString(s));
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}
