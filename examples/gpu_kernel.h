/* The user kernel of examples/gpu_kernel.c: its argument block, and its device body, written in
 * CUDA in gpu_kernel_body.cu (C linkage, so that the C program can name it). */
#ifndef GPU_KERNEL_H
#define GPU_KERNEL_H

#include <dagr/task.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One tile of a DArray, X := alpha X + beta I: rows x cols elements with leading dimension
 * task->ld[0], whose element (0, 0) is the global (i0, j0). */
typedef struct scale_shift_args {
    double alpha, beta;
    int64_t i0, j0, rows, cols;
} scale_shift_args_t;

/* The device body: queues the __global__ kernel on task->stream (a GPU), or answers
 * DAGR_TASK_NEXT where there is none (a test device), so that the CPU body runs. */
dagr_task_result_t scale_shift_gpu(const dagr_task_view_t *task);

#ifdef __cplusplus
}
#endif
#endif
