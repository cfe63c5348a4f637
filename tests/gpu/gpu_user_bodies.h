/* Device bodies of tests/gpu/test_gpu_user.c, written in CUDA (gpu_user_bodies.cu) with C
 * linkage. Each answers DAGR_TASK_NEXT where task->stream is NULL (a test device). */
#ifndef GPU_USER_BODIES_H
#define GPU_USER_BODIES_H

#include <dagr/task.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[i] += a x[i] + i over n doubles: buf[0] x, buf[1] y; args a user_axpy_args_t. */
typedef struct user_axpy_args {
    double a;
    int64_t n;
} user_axpy_args_t;
dagr_task_result_t user_axpy_gpu(const dagr_task_view_t *task);

/* One DArray tile, X := alpha X + beta I (global (i0, j0) at element (0, 0)). */
typedef struct user_shift_args {
    double alpha, beta;
    int64_t i0, j0, rows, cols;
} user_shift_args_t;
dagr_task_result_t user_shift_gpu(const dagr_task_view_t *task);

/* Failures: a kernel launched with 4096 threads a block (cudaErrorInvalidConfiguration), and
 * cublasDgemm with lda = 0 (CUBLAS_STATUS_INVALID_VALUE); both report with dagr_task_fail. */
dagr_task_result_t user_bad_launch_gpu(const dagr_task_view_t *task);
dagr_task_result_t user_bad_cublas_gpu(const dagr_task_view_t *task);

#ifdef __cplusplus
}
#endif
#endif
