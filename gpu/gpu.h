/* GPUs: which of the node's GPUs this rank uses, found at dagr_init (private to dagr). Each
 * becomes a device (lib/device.c) whose memory node and streams are cuda_node.c's; it runs
 * the tasks of kernels that carry a device body (README, "GPUs"). Built without CUDA
 * (-Dcuda=disabled, or no toolkit found), every rank has none. */
#ifndef DAGR_GPU_H
#define DAGR_GPU_H

#include <dagr/dagr.h>

#include <stddef.h>

#define GPU_MAX 16 /* GPUs one rank takes, at most */

/* What the environment asks for (lib/context.c reads it): DAGR_GPUS (-1 when unset: the
 * rank's share of the node's GPUs) and DAGR_GPU_MEMORY (0 when unset: 90 % of each GPU's
 * free memory). */
typedef struct gpu_env {
    int gpus;
    size_t memory;
} gpu_env_t;

typedef struct gpu_info {
    int count;        /* GPUs this rank uses */
    int visible;      /* GPUs the process sees (CUDA_VISIBLE_DEVICES applies) */
    int ids[GPU_MAX]; /* their CUDA device numbers */
    char names[GPU_MAX][64];
    size_t budget[GPU_MAX]; /* bytes dagr may use on each */
    char why[160];          /* when count is 0: why (no CUDA in this build, no driver, ...) */
} gpu_info_t;

/* The GPUs local rank `local_rank` of `local_size` ranks on its node takes: the node's
 * visible GPUs are cut into consecutive blocks without overlap (rank r of L takes N / L of N,
 * the first N % L ranks one more), of which it uses at most e->gpus. No GPU, or a CUDA
 * error, is no error: count 0 and why says what was found. Local. */
void gpu_discover(const gpu_env_t *e, int local_rank, int local_size, gpu_info_t *out);

/* The block [*first, *first + *n) of n_gpus GPUs that local rank r of size ranks takes. */
void gpu_share(int n_gpus, int r, int size, int *first, int *n);

#endif
