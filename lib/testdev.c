/* The test device: a memory node that behaves like a GPU's but lives in host memory, so that
 * every device path (placement, copies in and out, a worker of its own, eviction under a
 * memory budget, asynchronous completion) runs on machines without one, CI's included. Its
 * memory is its own allocations under the budget device.c enforces; its copies are made by a
 * thread of its own, in order, each after an optional delay (DAGR_TEST_DEVICE_DELAY
 * microseconds), so that they overlap the tasks its worker runs as a GPU's copy engines do.
 * With the trace on, each copy is an event on the device's copy row (trace_copy). */
#include "lib_impl.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct copy_req {
    mem_copy_t c;
    atomic_bool *done;
    struct copy_req *next;
} copy_req_t;

/* Freed blocks kept for reuse, as GPU allocators keep theirs: fresh memory faults its pages in
 * at the first copy, which would make copies look several times slower than they are. */
typedef struct pooled {
    void *p;
    size_t bytes;
    struct pooled *next;
} pooled_t;

typedef struct testdev {
    device_t *dev;
    dagr_ctx_t *ctx;
    int index;                   /* the device's, for the trace */
    size_t pool_max, pool_bytes; /* at most the budget's worth of free blocks is kept */
    pooled_t *pool;
    long delay_us;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    copy_req_t *head, **tail;
    bool stop;
    double busy; /* seconds spent copying (guarded by lock) */
    pthread_t thread;
} testdev_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void copy_rows(const mem_copy_t *c) {
    if (c->height == 1 || (c->dpitch == c->width && c->spitch == c->width)) {
        memcpy(c->dst, c->src, c->width * c->height);
        return;
    }
    for (size_t r = 0; r < c->height; r++)
        memcpy((char *)c->dst + r * c->dpitch, (const char *)c->src + r * c->spitch, c->width);
}

static void *copy_main(void *p) {
    testdev_t *t = p;
    for (;;) {
        pthread_mutex_lock(&t->lock);
        while (!t->head && !t->stop)
            pthread_cond_wait(&t->cond, &t->lock);
        copy_req_t *r = t->head;
        if (r) {
            t->head = r->next;
            if (!t->head) t->tail = &t->head;
        }
        pthread_mutex_unlock(&t->lock);
        if (!r) return NULL; /* stopping, and nothing left */
        if (t->delay_us > 0) {
            struct timespec ts = {t->delay_us / 1000000, (t->delay_us % 1000000) * 1000};
            nanosleep(&ts, NULL);
        }
        /* ctx->trace is set before this thread starts and freed after it stops. */
        int64_t t0 = t->ctx->trace ? trace_ticks() : 0;
        double c0 = now();
        copy_rows(&r->c);
        double c1 = now();
        if (t->ctx->trace) trace_copy(t->ctx, t->index, r->c.to_node, t0, r->c.width * r->c.height);
        atomic_store_explicit(r->done, true, memory_order_release);
        pthread_mutex_lock(&t->lock);
        t->busy += c1 - c0;
        pthread_mutex_unlock(&t->lock);
        free(r);
        device_copy_done(t->dev);
    }
}

void *testdev_start(dagr_ctx_t *ctx, device_t *dev, int index, size_t budget, long delay_us) {
    testdev_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dev = dev;
    t->ctx = ctx;
    t->index = index;
    t->pool_max = budget;
    t->delay_us = delay_us;
    t->tail = &t->head;
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    if (pthread_create(&t->thread, NULL, copy_main, t) != 0) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
    }
    return t;
}

/* Called by the device's worker only (under the device's lock): the pool needs no lock. */
static void *td_alloc(void *impl, size_t bytes) {
    testdev_t *t = impl;
    for (pooled_t **pp = &t->pool; *pp; pp = &(*pp)->next) {
        pooled_t *b = *pp;
        if (b->bytes != bytes) continue;
        *pp = b->next;
        t->pool_bytes -= bytes;
        void *p = b->p;
        free(b);
        return p;
    }
    return data_alloc_zeroed(bytes, false);
}

static void td_free(void *impl, void *p, size_t bytes) {
    testdev_t *t = impl;
    /* Room in the pool: the oldest blocks go first. */
    while (t->pool && t->pool_bytes + bytes > t->pool_max) {
        pooled_t **last = &t->pool;
        while ((*last)->next)
            last = &(*last)->next;
        t->pool_bytes -= (*last)->bytes;
        data_buf_free((*last)->p);
        free(*last);
        *last = NULL;
    }
    pooled_t *b = bytes <= t->pool_max ? malloc(sizeof *b) : NULL;
    if (!b) {
        data_buf_free(p);
        return;
    }
    *b = (pooled_t){p, bytes, t->pool};
    t->pool = b;
    t->pool_bytes += bytes;
}

/* Out of memory for the request: the copy is made here, at once (still correct; the caller
 * sees *done already set, so no wake-up is needed, and none is made: the caller may hold the
 * device's lock; the trace leaves it out, as it is not on the copy thread). */
static bool td_copy(void *impl, const mem_copy_t *c, atomic_bool *done) {
    testdev_t *t = impl;
    copy_req_t *r = malloc(sizeof *r);
    if (!r) {
        copy_rows(c);
        atomic_store_explicit(done, true, memory_order_release);
        return true;
    }
    *r = (copy_req_t){*c, done, NULL};
    pthread_mutex_lock(&t->lock);
    *t->tail = r;
    t->tail = &r->next;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return true;
}

static double td_busy(void *impl) {
    testdev_t *t = impl;
    pthread_mutex_lock(&t->lock);
    double b = t->busy;
    pthread_mutex_unlock(&t->lock);
    return b;
}

/* Finishes the copies queued, then stops. */
static void td_stop(void *impl) {
    testdev_t *t = impl;
    pthread_mutex_lock(&t->lock);
    t->stop = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    while (t->pool) {
        pooled_t *b = t->pool;
        t->pool = b->next;
        data_buf_free(b->p);
        free(b);
    }
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

const mem_ops_t testdev_ops = {
    .kind = "test device",
    .alloc = td_alloc,
    .free = td_free,
    .copy = td_copy,
    .busy = td_busy,
    .stop = td_stop,
};
