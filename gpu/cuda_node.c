/* A GPU as a device (lib/device.c): its memory node (mem_ops_t: cudaMalloc, and copies on a
 * stream of their own whose completion a host callback reports) and the stream its device
 * bodies queue their work on (task->stream). Built only with CUDA.
 *
 * Every entry point selects the GPU on the calling thread first (cudaSetDevice is per thread,
 * and copies are started from any thread: the device's worker, a host worker writing a copy
 * back, the main thread's dagr_wait_all). A CUDA error is DAGR_ERR_GPU with CUDA's message,
 * recorded as the run's failure (a device's copies have no other way to fail).
 *
 * Staging. A tile's host copy is ordinary (pageable) memory: the caller's arrays, the heap, MPI's
 * window. The driver copies pageable memory through a pinned buffer of its own, synchronously
 * for the calling thread, which would be the device's worker or a host worker writing a copy
 * back. So every copy goes to a thread of the node's own, the stager, in order; it moves the
 * bytes through a ring of STAGE_SLOTS pinned chunks of STAGE_CHUNK bytes: packing the next chunk
 * (memcpy, which also gathers a strided tile's columns) while the DMA engine moves the previous
 * one, and the other way round for copies back. Host memory already pinned (cudaHostAlloc'ed or
 * registered by the program) is copied directly, on the same stream, still in order. Without
 * the ring (cudaHostAlloc failed) the stager issues every copy directly.
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
#include <string.h>

#define STAGE_SLOTS 4
#define STAGE_CHUNK ((size_t)4 << 20)

typedef struct copy_req {
    mem_copy_t c;
    atomic_bool *done;
    struct copy_req *next;
} copy_req_t;

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
    /* The stager (see the top): its queue under `lock`, its pinned ring and the events that say
     * when the DMA engine is done with each chunk. */
    pthread_t stager;
    pthread_cond_t more;
    copy_req_t *head, **tail;
    bool stopping;
    char *ring;
    cudaEvent_t ev[STAGE_SLOTS];
    bool ev_pending[STAGE_SLOTS];
    unsigned slot;
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

/* Stager: a copy issued as such (pinned host memory, or no ring), its end reported on the stream.
 * Returns the CUDA error, if any. */
static cudaError_t copy_direct(cuda_node_t *g, const mem_copy_t *c, copy_arg_t *a) {
    enum cudaMemcpyKind kind = c->to_node ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    cudaError_t e;
    /* One block as such: a 2-D copy's pitch has a limit (cudaDevAttrMaxPitch). */
    if (c->height == 1)
        e = cudaMemcpyAsync(c->dst, c->src, c->width, kind, g->copies);
    else
        e = cudaMemcpy2DAsync(c->dst, c->dpitch, c->src, c->spitch, c->width, c->height, kind,
                              g->copies);
    return e == cudaSuccess ? cudaLaunchHostFunc(g->copies, copy_finished, a) : e;
}

/* Bytes [off, off + len) of a packed stream of rows of `width` bytes, whose host side is rows
 * `pitch` apart: gathered from the host into `packed` (to_node), or scattered back. */
static void pack(char *host, size_t pitch, size_t width, char *packed, size_t off, size_t len,
                 bool to_node) {
    while (len) {
        size_t row = off / width, col = off % width, n = width - col < len ? width - col : len;
        char *h = host + row * pitch + col;
        if (to_node)
            memcpy(packed, h, n);
        else
            memcpy(h, packed, n);
        packed += n, off += n, len -= n;
    }
}

/* Stager: the ring's next chunk, once the DMA engine is done with what it held. */
static cudaError_t next_slot(cuda_node_t *g, unsigned *s) {
    *s = g->slot++ % STAGE_SLOTS;
    if (!g->ev_pending[*s]) return cudaSuccess;
    g->ev_pending[*s] = false;
    return cudaEventSynchronize(g->ev[*s]);
}

/* Stager: a copy through the ring. The device side is packed (device copies are); the host
 * side may have a pitch. To the GPU, the end is reported on the stream after the last chunk's
 * DMA; back to the host, here, once the last chunk is unpacked. */
static cudaError_t copy_staged(cuda_node_t *g, const mem_copy_t *c, copy_arg_t *a) {
    size_t width = c->width, total = width * c->height;
    cudaError_t e = cudaSuccess;
    if (c->to_node) {
        for (size_t off = 0; off < total && e == cudaSuccess; off += STAGE_CHUNK) {
            size_t len = total - off < STAGE_CHUNK ? total - off : STAGE_CHUNK;
            unsigned s;
            if ((e = next_slot(g, &s)) != cudaSuccess) break;
            char *chunk = g->ring + (size_t)s * STAGE_CHUNK;
            pack((char *)c->src, c->spitch, width, chunk, off, len, true);
            e = cudaMemcpyAsync((char *)c->dst + off, chunk, len, cudaMemcpyHostToDevice,
                                g->copies);
            if (e == cudaSuccess) e = cudaEventRecord(g->ev[s], g->copies);
            g->ev_pending[s] = e == cudaSuccess;
        }
        return e == cudaSuccess ? cudaLaunchHostFunc(g->copies, copy_finished, a) : e;
    }
    /* Back to the host: up to STAGE_SLOTS chunks in flight, unpacked in order. */
    size_t nchunks = (total + STAGE_CHUNK - 1) / STAGE_CHUNK, issued = 0, drained = 0;
    unsigned first = 0;
    while (drained < nchunks && e == cudaSuccess) {
        while (issued < nchunks && issued - drained < STAGE_SLOTS && e == cudaSuccess) {
            unsigned s;
            if ((e = next_slot(g, &s)) != cudaSuccess) break;
            if (issued == 0) first = s;
            size_t off = issued * STAGE_CHUNK,
                   len = total - off < STAGE_CHUNK ? total - off : STAGE_CHUNK;
            e = cudaMemcpyAsync(g->ring + (size_t)s * STAGE_CHUNK, (const char *)c->src + off, len,
                                cudaMemcpyDeviceToHost, g->copies);
            if (e == cudaSuccess) e = cudaEventRecord(g->ev[s], g->copies);
            g->ev_pending[s] = e == cudaSuccess;
            issued++;
        }
        if (e != cudaSuccess) break;
        unsigned s = (first + (unsigned)drained) % STAGE_SLOTS;
        g->ev_pending[s] = false;
        if ((e = cudaEventSynchronize(g->ev[s])) != cudaSuccess) break;
        size_t off = drained * STAGE_CHUNK,
               len = total - off < STAGE_CHUNK ? total - off : STAGE_CHUNK;
        pack(c->dst, c->dpitch, width, g->ring + (size_t)s * STAGE_CHUNK, off, len, false);
        drained++;
    }
    if (e == cudaSuccess) copy_finished(a); /* not on CUDA's thread, but it only posts */
    return e;
}

/* Whether host memory at p is pinned (page-locked, or managed): the DMA engine reads it as is. */
static bool pinned(const void *p) {
    struct cudaPointerAttributes at;
    if (cudaPointerGetAttributes(&at, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return at.type == cudaMemoryTypeHost || at.type == cudaMemoryTypeManaged;
}

static void *stager_main(void *p) {
    cuda_node_t *g = p;
    bool ok = cudaSetDevice(g->id) == cudaSuccess;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->head && !g->stopping)
            pthread_cond_wait(&g->more, &g->lock);
        copy_req_t *r = g->head;
        if (!r) break; /* stopping, and nothing left */
        g->head = r->next;
        if (!g->head) g->tail = &g->head;
        pthread_mutex_unlock(&g->lock);
        const mem_copy_t *c = &r->c;
        copy_arg_t *a = malloc(sizeof *a);
        cudaError_t e = !ok ? cudaErrorInvalidDevice : a ? cudaSuccess : cudaErrorMemoryAllocation;
        if (e == cudaSuccess) {
            *a = (copy_arg_t){g, r->done, dagr_now()};
            bool packed = c->to_node ? c->dpitch == c->width : c->spitch == c->width;
            const void *host = c->to_node ? c->src : c->dst;
            e = g->ring && packed && !pinned(host) ? copy_staged(g, c, a) : copy_direct(g, c, a);
        }
        if (e != cudaSuccess) {
            record(g, c->to_node ? "a copy to the GPU" : "a copy from the GPU", e);
            (void)cudaStreamSynchronize(g->copies); /* nothing of it may still be moving */
            for (int s = 0; s < STAGE_SLOTS; s++)
                g->ev_pending[s] = false;
            free(a);
            atomic_store_explicit(r->done, true, memory_order_release);
            sem_post(&g->ended);
        }
        free(r);
        pthread_mutex_lock(&g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

/* Queues the copy for the stager (see the top): it returns at once, whatever the memory. */
static bool cu_copy(void *impl, const mem_copy_t *c, atomic_bool *done) {
    cuda_node_t *g = impl;
    copy_req_t *r = malloc(sizeof *r);
    if (!r) {
        record(g, c->to_node ? "a copy to the GPU" : "a copy from the GPU",
               cudaErrorMemoryAllocation);
        atomic_store_explicit(done, true, memory_order_release);
        errno = ENOMEM;
        return false;
    }
    *r = (copy_req_t){.c = *c, .done = done};
    pthread_mutex_lock(&g->lock);
    *g->tail = r;
    g->tail = &r->next;
    pthread_cond_signal(&g->more);
    pthread_mutex_unlock(&g->lock);
    return true;
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

static void ring_free(cuda_node_t *g) {
    if (!g->ring) return;
    for (int s = 0; s < STAGE_SLOTS; s++)
        (void)cudaEventDestroy(g->ev[s]);
    (void)cudaFreeHost(g->ring);
    g->ring = NULL;
}

/* The stager's queue and ring (its thread is started next). Without pinned memory for the ring
 * the stager issues every copy directly. */
static void stager_init(cuda_node_t *g) {
    g->tail = &g->head;
    pthread_cond_init(&g->more, NULL);
    if (cudaHostAlloc((void **)&g->ring, STAGE_SLOTS * STAGE_CHUNK, cudaHostAllocDefault) !=
        cudaSuccess) {
        (void)cudaGetLastError();
        g->ring = NULL; /* copies go directly, from the stager */
    }
    for (int s = 0; g->ring && s < STAGE_SLOTS; s++) {
        if (cudaEventCreateWithFlags(&g->ev[s], cudaEventDisableTiming) != cudaSuccess) {
            (void)cudaGetLastError();
            while (s--)
                (void)cudaEventDestroy(g->ev[s]);
            (void)cudaFreeHost(g->ring);
            g->ring = NULL;
        }
    }
}

static void stager_stop(cuda_node_t *g) {
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->more);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->stager, NULL);
    pthread_cond_destroy(&g->more);
}

static void cu_stop(void *impl) {
    cuda_node_t *g = impl;
    stager_stop(g); /* after the copies queued: none is left behind */
    /* Every copy issued has ended (its host function posted, the ring is read) before the ring
     * and g go, even if selecting the GPU failed: the calls then still try. */
    (void)cudaSetDevice(g->id);
    (void)cudaStreamSynchronize(g->copies);
    ring_free(g);
    (void)cudaStreamDestroy(g->copies);
    (void)cudaStreamDestroy(g->compute);
    (void)cudaGetLastError();
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
    if (notifier) {
        stager_init(g);
        if (pthread_create(&g->stager, NULL, stager_main, g) != 0) {
            ring_free(g);
            pthread_cond_destroy(&g->more);
            atomic_store_explicit(&g->stop, true, memory_order_release);
            sem_post(&g->ended);
            pthread_join(g->notifier, NULL);
            sem_destroy(&g->ended);
            notifier = false;
        }
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
