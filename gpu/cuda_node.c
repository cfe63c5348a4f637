/* A GPU as a device (lib/device.c): its memory node (mem_ops_t: cudaMalloc, and copies on a
 * stream of their own whose completion a host callback reports) and the stream its device
 * bodies queue their work on (task->stream). Built only with CUDA.
 *
 * Every entry point selects the GPU on the calling thread first (cudaSetDevice is per thread,
 * and copies are started from any thread: the device's worker, a host worker writing a copy
 * back, the main thread's dagr_wait_all). A CUDA error is DAGR_ERR_GPU with CUDA's message,
 * recorded as the run's failure (a device's copies have no other way to fail). Host memory is
 * not pinned yet, so a copy from pageable memory is staged by the driver and overlaps less.
 *
 * A copy's end is reported by a host function on its stream, which only sets the copy's flag
 * and posts a semaphore; a thread of the node's own then wakes the device (device_copy_done
 * takes the device's lock). The host function must never wait: cudaFree, called under that
 * lock, waits for the device's work, host functions included. */
#include "lib_impl.h"

#include "gpu.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cuda_node {
    dagr_ctx_t *ctx;
    device_t *dev;
    int id;               /* CUDA device number */
    cudaStream_t copies;  /* copies in and out, in order */
    cudaStream_t compute; /* what device bodies queue (task->stream) */
    pthread_mutex_t lock;
    double busy; /* seconds from each copy's start to its end (queueing included) */
    char err[DAGR_ERRMSG_MAX];
    sem_t ended; /* one post per copy ended, one more to stop */
    atomic_bool stop;
    pthread_t notifier; /* wakes the device for each post */
} cuda_node_t;

typedef struct copy_arg {
    cuda_node_t *node;
    atomic_bool *done;
    double t0;
} copy_arg_t;

static void record(cuda_node_t *g, const char *what, cudaError_t e) {
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "GPU %d on rank %d: %s: %s (%s)", g->id, g->ctx->rank, what,
             cudaGetErrorName(e), cudaGetErrorString(e));
    (void)cudaGetLastError(); /* not sticky for the next call */
    ctx_record_failure(g->ctx, DAGR_ERR_GPU, msg);
}

static void *cu_alloc(void *impl, size_t bytes) {
    cuda_node_t *g = impl;
    void *p = NULL;
    if (cudaSetDevice(g->id) != cudaSuccess || cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory: the device evicts or runs it on the host */
        return NULL;
    }
    return p;
}

static void cu_free(void *impl, void *p, size_t bytes) {
    (void)bytes;
    cuda_node_t *g = impl;
    cudaError_t e = cudaSetDevice(g->id);
    if (e == cudaSuccess) e = cudaFree(p);
    if (e != cudaSuccess) record(g, "cudaFree", e);
}

/* On CUDA's callback thread: no CUDA call, and nothing that waits (see the top). */
static void CUDART_CB copy_finished(void *p) {
    copy_arg_t *a = p;
    cuda_node_t *g = a->node;
    atomic_bool *done = a->done;
    double secs = dagr_now() - a->t0;
    free(a);
    /* busy is a statistic: a trylock that fails loses one sample rather than wait. */
    if (pthread_mutex_trylock(&g->lock) == 0) {
        g->busy += secs;
        pthread_mutex_unlock(&g->lock);
    }
    atomic_store_explicit(done, true, memory_order_release);
    sem_post(&g->ended);
}

static void *notifier_main(void *p) {
    cuda_node_t *g = p;
    for (;;) {
        while (sem_wait(&g->ended) != 0) {
        }
        if (atomic_load_explicit(&g->stop, memory_order_acquire)) return NULL;
        device_copy_done(g->dev);
    }
}

static bool cu_copy(void *impl, const mem_copy_t *c, atomic_bool *done) {
    cuda_node_t *g = impl;
    copy_arg_t *a = malloc(sizeof *a);
    cudaError_t e = a ? cudaSetDevice(g->id) : cudaErrorMemoryAllocation;
    enum cudaMemcpyKind kind = c->to_node ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    /* One block as such: a 2-D copy's pitch has a limit (cudaDevAttrMaxPitch). */
    if (e == cudaSuccess && c->height == 1)
        e = cudaMemcpyAsync(c->dst, c->src, c->width, kind, g->copies);
    else if (e == cudaSuccess)
        e = cudaMemcpy2DAsync(c->dst, c->dpitch, c->src, c->spitch, c->width, c->height, kind,
                              g->copies);
    if (e == cudaSuccess) {
        *a = (copy_arg_t){g, done, dagr_now()};
        e = cudaLaunchHostFunc(g->copies, copy_finished, a);
        if (e == cudaSuccess) return true;
    }
    record(g, c->to_node ? "a copy to the GPU" : "a copy from the GPU", e);
    free(a);
    (void)cudaStreamSynchronize(g->copies); /* nothing of it may still be moving */
    atomic_store_explicit(done, true, memory_order_release);
    errno = EIO;
    return false;
}

static double cu_busy(void *impl) {
    cuda_node_t *g = impl;
    pthread_mutex_lock(&g->lock);
    double b = g->busy;
    pthread_mutex_unlock(&g->lock);
    return b;
}

static void *cu_stream(void *impl) {
    cuda_node_t *g = impl;
    cudaError_t e = cudaSetDevice(g->id);
    if (e != cudaSuccess) record(g, "cudaSetDevice", e);
    return g->compute;
}

static const char *cu_sync(void *impl) {
    cuda_node_t *g = impl;
    cudaError_t e = cudaStreamSynchronize(g->compute);
    if (e == cudaSuccess) return NULL;
    snprintf(g->err, sizeof g->err, "GPU %d: %s (%s)", g->id, cudaGetErrorName(e),
             cudaGetErrorString(e));
    (void)cudaGetLastError();
    return g->err;
}

static void cu_stop(void *impl) {
    cuda_node_t *g = impl;
    if (cudaSetDevice(g->id) == cudaSuccess) {
        (void)cudaStreamSynchronize(g->copies); /* its host functions have posted */
        (void)cudaStreamDestroy(g->copies);
        (void)cudaStreamDestroy(g->compute);
    }
    atomic_store_explicit(&g->stop, true, memory_order_release);
    sem_post(&g->ended);
    pthread_join(g->notifier, NULL);
    sem_destroy(&g->ended);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

const mem_ops_t cuda_ops = {
    .kind = "cuda",
    .alloc = cu_alloc,
    .free = cu_free,
    .copy = cu_copy,
    .busy = cu_busy,
    .stop = cu_stop,
    .stream = cu_stream,
    .sync = cu_sync,
};

void *cuda_node_start(dagr_ctx_t *ctx, device_t *dev, int id) {
    cuda_node_t *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    *g = (cuda_node_t){.ctx = ctx, .dev = dev, .id = id};
    cudaError_t e = cudaSetDevice(id);
    bool copies = false;
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&g->copies, cudaStreamNonBlocking);
    if (e == cudaSuccess) {
        copies = true;
        e = cudaStreamCreateWithFlags(&g->compute, cudaStreamNonBlocking);
    }
    pthread_mutex_init(&g->lock, NULL);
    bool notifier = e == cudaSuccess && sem_init(&g->ended, 0, 0) == 0;
    if (notifier && pthread_create(&g->notifier, NULL, notifier_main, g) != 0) {
        sem_destroy(&g->ended);
        notifier = false;
    }
    if (!notifier) {
        (void)cudaGetLastError();
        if (copies) (void)cudaStreamDestroy(g->copies);
        if (e == cudaSuccess) (void)cudaStreamDestroy(g->compute);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    return g;
}
