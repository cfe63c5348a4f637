/* GPU discovery (gpu.h). The CUDA runtime is asked only here; a build without CUDA compiles
 * the same interface, finding no GPU. */
#include "gpu.h"

#include <stdio.h>
#include <string.h>

#ifdef DAGR_HAVE_CUDA
#include <cuda_runtime.h>
#endif

void gpu_share(int n_gpus, int r, int size, int *first, int *n) {
    if (size < 1 || r < 0 || r >= size || n_gpus < 1) {
        *first = 0;
        *n = 0;
        return;
    }
    int base = n_gpus / size, extra = n_gpus % size;
    *first = r * base + (r < extra ? r : extra);
    *n = base + (r < extra);
}

void gpu_discover(const gpu_env_t *e, int local_rank, int local_size, gpu_info_t *out) {
    memset(out, 0, sizeof *out);
    if (e->gpus == 0) {
        snprintf(out->why, sizeof out->why, "none asked for (DAGR_GPUS=0)");
        return;
    }
#ifndef DAGR_HAVE_CUDA
    (void)local_rank;
    (void)local_size;
    snprintf(out->why, sizeof out->why, "dagr was built without CUDA (-Dcuda)");
#else
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        /* cudaErrorInsufficientDriver (35) with the toolkit but no driver, as on machines
         * without a GPU; cudaErrorNoDevice (100) with a driver and no device. */
        snprintf(out->why, sizeof out->why, "no GPU: %s (%s)", cudaGetErrorName(err),
                 cudaGetErrorString(err));
        (void)cudaGetLastError(); /* clears the error for later calls */
        return;
    }
    out->visible = n;
    int first, count;
    gpu_share(n, local_rank, local_size, &first, &count);
    if (e->gpus > 0 && count > e->gpus) count = e->gpus;
    if (count > GPU_MAX) count = GPU_MAX;
    if (count == 0) {
        snprintf(out->why, sizeof out->why,
                 n ? "the node's %d GPUs went to its other ranks (%d ranks on the node)"
                   : "no GPU visible (%d)",
                 n, local_size);
        return;
    }
    for (int i = 0; i < count; i++) {
        int id = first + i;
        struct cudaDeviceProp p;
        size_t avail = 0, total = 0;
        if (cudaGetDeviceProperties(&p, id) == cudaSuccess)
            snprintf(out->names[i], sizeof out->names[i], "%.63s", p.name);
        else
            snprintf(out->names[i], sizeof out->names[i], "GPU %d", id);
        /* The default budget needs the free memory, which needs a context on the device:
         * only then. */
        if (!e->memory && cudaSetDevice(id) == cudaSuccess &&
            cudaMemGetInfo(&avail, &total) == cudaSuccess)
            out->budget[i] = avail / 10 * 9;
        else
            out->budget[i] = e->memory;
        (void)cudaGetLastError();
        out->ids[i] = id;
    }
    out->count = count;
#endif
}
