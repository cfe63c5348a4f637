/* The CUDA half of examples/gpu_kernel.c: a hand-written __global__ kernel and the device
 * body that launches it for dagr. dagr gives the body the device's copy of the tile in
 * task->buf[0] (a device pointer; leading dimension task->ld[0]) and the stream to queue on in
 * task->stream; the runtime waits for that stream after the body returns, and a CUDA error
 * found then fails the task with DAGR_ERR_GPU. A launch error (a bad grid) is not sticky and
 * would not show there, so the body asks cudaGetLastError itself. */
#include <cuda_runtime.h>

#include "gpu_kernel.h"

/* x(r, c) = alpha x(r, c) + beta [i0 + r == j0 + c], one thread per element. */
__global__ void scale_shift(double *x, long long ld, long long rows, long long cols, double alpha,
                            double beta, long long i0, long long j0) {
    long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    long long c = blockIdx.y * (long long)blockDim.y + threadIdx.y;
    if (r >= rows || c >= cols) return;
    double v = alpha * x[r + c * ld];
    if (i0 + r == j0 + c) v += beta;
    x[r + c * ld] = v;
}

extern "C" dagr_task_result_t scale_shift_gpu(const dagr_task_view_t *t) {
    if (!t->stream) return DAGR_TASK_NEXT; /* a test device: host memory, the CPU body */
    const scale_shift_args_t *a = (const scale_shift_args_t *)t->args;
    dim3 block(32, 8);
    dim3 grid((unsigned)((a->rows + 31) / 32), (unsigned)((a->cols + 7) / 8));
    scale_shift<<<grid, block, 0, (cudaStream_t)t->stream>>>(
        (double *)t->buf[0], (long long)t->ld[0], a->rows, a->cols, a->alpha, a->beta, a->i0,
        a->j0);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        dagr_task_fail(t, DAGR_ERR_GPU, "scale_shift<<<>>>: %s (%s)", cudaGetErrorString(e),
                       cudaGetErrorName(e));
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}
