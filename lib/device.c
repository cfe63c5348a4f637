/* Devices: memory nodes with a worker of their own (lib_impl.h, "Devices").
 *
 * Each handle keeps one copy per device (struct dev_copy: buffer, the host generation it
 * holds, pins), made when a task placed on the device needs it. A device's worker takes ready
 * tasks from its own priority queue and works on up to DEPTH of them at once: it reserves
 * their copies (evicting copies no task uses, least recently used first, when the memory budget
 * is full), starts the copies in of those not valid, runs the oldest task whose copies are in,
 * then copies back what it wrote and completes it once that is in the host copy. So the copies
 * of the next tasks move while a body runs; those of the next PREFETCH tasks in its queue start
 * too, into free memory (prefetch).
 *
 * Lazy write-back. What a device task writes stays on the device: the device's copy and the
 * handle take a new generation together (h->wgen) and h->dirty names the device, whose copy
 * is then the only current one. It goes back to the host copy when something needs the host
 * copy (device_writeback): a host task reading it, a SEND to another rank, a task on another
 * device (copies between devices go through the host), the eviction of that copy, and
 * dagr_wait_all, after which the host copies (the caller's buffers among them) are complete
 * as the API promises. So a tile a chain of device tasks updates (a trailing update of a
 * factorisation) crosses to the host once, not after every task. Any change of the host copy
 * (a host task writing, a receive, a resize, a freed buffer) clears h->dirty: that version is
 * newer than the device's. Two kinds of handles stay write-through (copied back before the
 * task completes): those whose size tasks decide (a transfer asks the host copy's size) and a
 * buffer the caller attached on its owner (the caller may read it after dagr_data_destroy and
 * a wait, when dagr no longer tracks the handle).
 *
 * Which tasks: any task (its CPU bodies run on the device's copies, which for the test device
 * are host memory; a GPU's needs device bodies, the GPU issue) except DAGR_WHERE_CPU, retries
 * of host tasks, and tasks on an owner's strided home that do not ask for a device (eligible).
 * Handles whose size tasks decide have device copies of each version's size; a body resizing
 * one on a device goes through the host copy (device_resize). A strided home's copy on a
 * device is packed: the copies in and out are two-dimensional.
 *
 * Locks: a device's lock guards its queue, its tasks in flight and every handle's copy on it;
 * it may be held while taking a handle's lock, never the other way round, and never across a
 * call that can spill (data_pin), whose last reference on a handle calls device_forget. The
 * context's write-back lock (one write-back at a time) is taken with neither held. */
#include "lib_impl.h"

#include "gpu.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEPTH 3    /* tasks a device works on at once: one running, the next ones' copies moving */
#define PREFETCH 4 /* queued tasks beyond those whose inputs are prefetched (see prefetch) */
#define MAX_PREFETCH 16 /* prefetched copies in flight at once */
#define MAX_DEVICES 8

struct dev_copy {
    void *buf;
    size_t bytes;       /* of buf */
    uint64_t wgen;      /* the host generation it holds (or is loading) */
    bool have;          /* buf holds generation wgen once `loaded` */
    atomic_bool loaded; /* the copy in is complete */
    int pins;           /* tasks of the device using it */
    bool tracked;       /* in the LRU list (only unpinned copies with a buffer are) */
    dagr_data_t *h;
    struct dev_copy *prev, *next;
};

enum { ST_IN, ST_RUNNING, ST_ASYNC, ST_OUT };

typedef struct dtask {
    node_t *n;
    int stage;
    bool pinned_host;     /* out of core: every access's host copy is pinned */
    atomic_bool *out;     /* per unique access: its copy out is done (written ones) */
    dagr_status_t status; /* the bodies' or the asynchronous completion's */
    char msg[DAGR_ERRMSG_MAX];
} dtask_t;

struct device {
    dagr_ctx_t *ctx;
    int index, worker; /* worker: its thread's index for the trace and worker_init */
    const mem_ops_t *ops;
    void *impl;
    bool gpu; /* a GPU: runs only kernels with a device body, on its own memory */
    size_t budget, used;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    rq_t rq;
    dtask_t *active[DEPTH]; /* oldest first */
    int nactive;
    struct dev_copy *lru_head, *lru_tail;
    bool stop;
    pthread_t thread;
    bool have_thread;
    _Atomic int64_t queued_ns;         /* expected run time of its queued and active tasks */
    struct dev_copy *pf[MAX_PREFETCH]; /* prefetched copies still loading (pinned, h held) */
    int npf;
    dagr_device_stats_t st;
};

static pm_class_t class_of(const device_t *d) {
    return d->gpu ? PM_GPU : PM_TEST;
}

/* The device's expected work loses what n was expected to take (device_place). */
static void dequeue(device_t *d, const node_t *n) {
    if (n->est_ns) atomic_fetch_sub_explicit(&d->queued_ns, n->est_ns, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------------------------- */

static bool parse_count(const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) return false;
    *out = x;
    return true;
}

dagr_status_t device_env_parse(device_env_t *e) {
    memset(e, 0, sizeof *e);
    e->test_memory = (size_t)256 << 20;
    const char *v;
    long x;
    if ((v = getenv("DAGR_TEST_DEVICES")) && *v) {
        DAGR_CHECK(parse_count(v, 0, MAX_DEVICES, &x), DAGR_ERR_ARG,
                   "DAGR_TEST_DEVICES='%s' must be an integer in [0, %d]", v, MAX_DEVICES);
        e->test_devices = (int)x;
    }
    if ((v = getenv("DAGR_TEST_DEVICE_MEMORY")) && *v) {
        char *end;
        errno = 0;
        unsigned long long b = strtoull(v, &end, 10);
        unsigned shift = *end == 'K' || *end == 'k'   ? 10
                         : *end == 'M' || *end == 'm' ? 20
                         : *end == 'G' || *end == 'g' ? 30
                                                      : 0;
        if (shift) end++;
        DAGR_CHECK(!errno && end != v && !*end && v[0] != '-' && b > 0 &&
                       b < (1ull << (63 - shift)),
                   DAGR_ERR_ARG,
                   "DAGR_TEST_DEVICE_MEMORY='%s' must be a positive size in bytes (suffix K, M "
                   "or G allowed)",
                   v);
        e->test_memory = (size_t)(b << shift);
    }
    if ((v = getenv("DAGR_TEST_DEVICE_DELAY")) && *v) {
        DAGR_CHECK(parse_count(v, 0, 1000000, &x), DAGR_ERR_ARG,
                   "DAGR_TEST_DEVICE_DELAY='%s' must be microseconds in [0, 1000000]", v);
        e->test_delay_us = x;
    }
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Copies (device lock held)
 * ---------------------------------------------------------------------------------------- */

static void lru_remove(device_t *d, struct dev_copy *c) {
    if (!c->tracked) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->lru_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        d->lru_tail = c->prev;
    c->prev = c->next = NULL;
    c->tracked = false;
}

static void lru_append(device_t *d, struct dev_copy *c) {
    c->prev = d->lru_tail;
    c->next = NULL;
    if (d->lru_tail)
        d->lru_tail->next = c;
    else
        d->lru_head = c;
    d->lru_tail = c;
    c->tracked = true;
}

static void copy_drop(device_t *d, struct dev_copy *c) {
    lru_remove(d, c);
    if (c->buf) {
        d->ops->free(d->impl, c->buf, c->bytes);
        d->used -= c->bytes;
    }
    c->buf = NULL;
    c->bytes = 0;
    c->have = false;
}

/* h's copy on d, the handle's array made at its first use on any device. */
static struct dev_copy *copy_of(device_t *d, dagr_data_t *h) {
    pthread_mutex_lock(&h->lock);
    if (!h->dev) {
        h->dev = calloc((size_t)d->ctx->ndev, sizeof *h->dev);
        for (int i = 0; h->dev && i < d->ctx->ndev; i++) {
            h->dev[i].h = h;
            atomic_init(&h->dev[i].loaded, false);
        }
    }
    pthread_mutex_unlock(&h->lock);
    return h->dev ? &h->dev[d->index] : NULL;
}

static uint64_t host_gen(dagr_data_t *h) {
    pthread_mutex_lock(&h->lock);
    uint64_t g = h->wgen;
    pthread_mutex_unlock(&h->lock);
    return g;
}

static void copy_unpin(device_t *d, struct dev_copy *c) {
    if (--c->pins == 0 && c->buf) lru_append(d, c);
}

void device_forget(dagr_data_t *h) {
    dagr_ctx_t *ctx = h->ctx;
    for (int i = 0; i < ctx->ndev; i++) {
        device_t *d = ctx->devs[i];
        pthread_mutex_lock(&d->lock);
        copy_drop(d, &h->dev[i]);
        pthread_mutex_unlock(&d->lock);
    }
    free(h->dev);
    h->dev = NULL;
}

/* Whether what a device task writes to h may stay on the device (see the top). */
static bool lazy(const dagr_ctx_t *ctx, const dagr_data_t *h) {
    return !h->dynamic && !(h->attached && h->owner == ctx->rank);
}

/* Starts copying h's host copy into its copy c on d (to_node) or back. A strided home (an
 * owner's attached matrix with ld > rows) is packed on the way in and unpacked on the way out:
 * device copies are packed. */
static void copy_host(device_t *d, dagr_data_t *h, struct dev_copy *c, bool to_node,
                      atomic_bool *done) {
    size_t width = h->bytes, height = 1, hpitch = h->bytes;
    if (h->buf_kind == BUF_HOME && data_strided(h)) {
        width = h->rows * h->elsize;
        height = h->cols;
        hpitch = h->home_ld * h->elsize;
    }
    mem_copy_t m = {.dst = to_node ? c->buf : h->buf,
                    .src = to_node ? h->buf : c->buf,
                    .dpitch = to_node ? width : hpitch,
                    .spitch = to_node ? hpitch : width,
                    .width = width,
                    .height = height,
                    .to_node = to_node};
    (void)d->ops->copy(d->impl, &m, done); /* a device's copies do not fail */
}

/* Waits (no lock held) until a copy started by ops->copy is done. */
static void wait_copy(device_t *d, atomic_bool *done) {
    pthread_mutex_lock(&d->lock);
    while (!atomic_load_explicit(done, memory_order_acquire))
        pthread_cond_wait(&d->cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

dagr_status_t device_writeback(dagr_data_t *h) {
    dagr_ctx_t *ctx = h->ctx;
    if (!data_dirty_hint(h)) return DAGR_OK;
    pthread_mutex_lock(&ctx->dev_wb_lock);
    pthread_mutex_lock(&h->lock);
    int k = h->dirty - 1;
    pthread_mutex_unlock(&h->lock);
    dagr_status_t s = DAGR_OK;
    if (k >= 0) {
        /* The host copy is overwritten whole: a spilled one is not read back. */
        s = ctx->store ? data_pin(h, PIN_OVERWRITE) : data_ensure_buf(h);
        if (s == DAGR_OK) {
            device_t *d = ctx->devs[k];
            struct dev_copy *c = &h->dev[k];
            pthread_mutex_lock(&d->lock);
            lru_remove(d, c); /* pinned: not evicted while it is copied */
            c->pins++;
            d->st.copies_out++;
            d->st.bytes_out += h->bytes;
            pthread_mutex_unlock(&d->lock);
            atomic_bool done = false;
            copy_host(d, h, c, false, &done);
            wait_copy(d, &done);
            /* Same generation on both now: the device's copy stays valid, and clean. */
            pthread_mutex_lock(&h->lock);
            if (h->dirty == k + 1) h->dirty = 0;
            pthread_mutex_unlock(&h->lock);
            pthread_mutex_lock(&d->lock);
            copy_unpin(d, c);
            pthread_mutex_unlock(&d->lock);
            if (ctx->store) data_unpin(h);
        }
    }
    pthread_mutex_unlock(&ctx->dev_wb_lock);
    return s;
}

dagr_status_t device_writeback_all(dagr_ctx_t *ctx) {
    dagr_status_t st = DAGR_OK;
    for (dagr_data_t *h = ctx->ndev ? ctx->live : NULL; h; h = h->next) {
        dagr_status_t s = device_writeback(h);
        if (st == DAGR_OK) st = s;
    }
    return st;
}

dagr_status_t device_resize(dagr_data_t *h, int di, size_t bytes, void **buf) {
    device_t *d = h->ctx->devs[di];
    struct dev_copy *c = &h->dev[di];
    size_t old = h->bytes, keep = old < bytes ? old : bytes;
    /* What the body wrote so far that stays goes to the host copy, which takes the new size
     * keeping it (zeros after); the device's copy is then made anew from the host's. Two
     * synchronous copies: resizing on a device is for a body that learns its output's size
     * (a filter), once per task. The copy is pinned by the task: nothing evicts it. On a GPU
     * what the body queued so far comes first. */
    if (keep && d->gpu) (void)d->ops->sync(d->impl); /* an error shows at the task's end */
    if (keep) {
        atomic_bool done = false;
        mem_copy_t m = {h->buf, c->buf, keep, keep, keep, 1, false};
        (void)d->ops->copy(d->impl, &m, &done);
        wait_copy(d, &done);
    }
    DAGR_TRY(data_set_size(h, bytes, SIZE_KEEP));
    pthread_mutex_lock(&d->lock);
    void *nb = bytes ? d->ops->alloc(d->impl, bytes) : NULL;
    if (bytes && !nb) {
        pthread_mutex_unlock(&d->lock);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %zu bytes on device %d for data #%llu",
                        bytes, di, (unsigned long long)h->id);
    }
    if (c->buf) {
        d->ops->free(d->impl, c->buf, c->bytes);
        d->used -= c->bytes;
    }
    c->buf = nb;
    c->bytes = bytes;
    d->used += bytes; /* over the budget if it must: the task is running */
    if (d->used > d->st.peak) d->st.peak = d->used;
    pthread_mutex_unlock(&d->lock);
    if (bytes) {
        atomic_bool done = false;
        mem_copy_t m = {nb, h->buf, bytes, bytes, bytes, 1, true};
        (void)d->ops->copy(d->impl, &m, &done);
        wait_copy(d, &done);
    }
    pthread_mutex_lock(&d->lock);
    pthread_mutex_lock(&h->lock);
    c->wgen = h->wgen;
    c->have = true;
    pthread_mutex_unlock(&h->lock);
    pthread_mutex_unlock(&d->lock);
    *buf = nb;
    return DAGR_OK;
}

/* Device lock held: whether c is the only current copy of its handle. */
static bool copy_dirty(device_t *d, struct dev_copy *c) {
    pthread_mutex_lock(&c->h->lock);
    bool dirty = c->h->dirty == d->index + 1;
    pthread_mutex_unlock(&c->h->lock);
    return dirty;
}

/* Device lock held (dropped meanwhile): evicts a copy newer than the host's, written back
 * first. False when the write-back failed (the copy stays). */
static bool evict_dirty(device_t *d, struct dev_copy *c) {
    dagr_data_t *h = c->h;
    if (!data_ref_if_alive(h)) { /* dying: nobody will read it */
        copy_drop(d, c);
        d->st.evictions++;
        return true;
    }
    lru_remove(d, c);
    c->pins++;
    pthread_mutex_unlock(&d->lock);
    dagr_status_t s = device_writeback(h);
    pthread_mutex_lock(&d->lock);
    if (--c->pins == 0) {
        if (s == DAGR_OK) {
            copy_drop(d, c);
            d->st.evictions++;
            d->st.writebacks++;
        } else if (c->buf) {
            lru_append(d, c);
        }
    }
    /* The last reference forgets h through this device's lock: drop it without holding it. */
    pthread_mutex_unlock(&d->lock);
    data_unref(h);
    pthread_mutex_lock(&d->lock);
    return s == DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Admission: a task's copies reserved (device lock held)
 * ---------------------------------------------------------------------------------------- */

enum { ADMIT_OK, ADMIT_WAIT, ADMIT_HOST };

/* Bytes n needs on d that have no buffer there yet. */
static size_t bytes_missing(device_t *d, node_t *n) {
    size_t need = 0;
    for (int j = 0; j < n->nacc; j++) {
        dagr_data_t *h = n->acc[j].h;
        const struct dev_copy *c = h->dev ? &h->dev[d->index] : NULL;
        if (!c || !c->buf || c->bytes != h->bytes) need += h->bytes;
    }
    return need;
}

/* Makes room for n's copies, evicting copies no task uses (the oldest first; one newer than
 * the host's is written back first, with the lock dropped): ADMIT_WAIT when the copies of
 * tasks in flight leave too little, ADMIT_HOST when n could never fit. */
static int make_room(device_t *d, node_t *n) {
    size_t need = bytes_missing(d, n);
    if (need > d->budget) return ADMIT_HOST;
    while (d->used + need > d->budget && d->lru_head) {
        struct dev_copy *c = d->lru_head;
        if (copy_dirty(d, c)) {
            if (!evict_dirty(d, c)) break;
            need = bytes_missing(d, n); /* the lock was dropped */
            continue;
        }
        copy_drop(d, c);
        d->st.evictions++;
    }
    if (d->used + need <= d->budget) return ADMIT_OK;
    return d->nactive ? ADMIT_WAIT : ADMIT_HOST;
}

/* Pins n's copies on d, allocating the missing ones; marks those to load (their generation set
 * now: a task admitted later waits for the same load). Returns how many accesses it pinned:
 * fewer than n->nacc when out of memory. */
static int reserve(device_t *d, dtask_t *t) {
    node_t *n = t->n;
    for (int j = 0; j < n->nacc; j++) {
        dagr_data_t *h = n->acc[j].h;
        struct dev_copy *c = copy_of(d, h);
        if (!c) return j;
        /* A handle whose size tasks decide may have another size than its copy here. */
        if (c->buf && c->bytes != h->bytes && c->pins == 0) copy_drop(d, c);
        if (!c->buf && h->bytes) {
            c->buf = d->ops->alloc(d->impl, h->bytes);
            if (!c->buf) return j;
            c->bytes = h->bytes;
            c->have = false;
            d->used += h->bytes;
            if (d->used > d->st.peak) d->st.peak = d->used;
        }
        lru_remove(d, c);
        c->pins++;
        uint64_t g = host_gen(h);
        if (!c->have || c->wgen != g) {
            c->have = true;
            c->wgen = g;
            atomic_store_explicit(&c->loaded, h->bytes == 0, memory_order_relaxed);
            t->out[j] = h->bytes != 0; /* borrowed until the copy in starts: "to load" */
        }
    }
    return n->nacc;
}

static void release(device_t *d, dtask_t *t, int upto) {
    for (int j = 0; j < upto; j++) {
        dagr_data_t *h = t->n->acc[j].h;
        if (h->dev) copy_unpin(d, &h->dev[d->index]);
    }
}

/* ------------------------------------------------------------------------------------------
 * The worker
 * ---------------------------------------------------------------------------------------- */

static dtask_t *dtask_new(node_t *n) {
    dtask_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->out = calloc((size_t)n->nacc, sizeof *t->out);
    if (!t->out) {
        free(t);
        return NULL;
    }
    t->n = n;
    t->stage = ST_IN;
    return t;
}

static void dtask_free(dtask_t *t) {
    free(t->out);
    free(t);
}

/* Unlocked: host copies pinned (out of core) or made, then the copies in started for the
 * accesses reserve marked. On failure the task ends without running. */
static void start_in(device_t *d, dtask_t *t) {
    dagr_ctx_t *ctx = d->ctx;
    node_t *n = t->n;
    dagr_status_t s = DAGR_OK;
    if (ctx->store) {
        int j = 0;
        /* A written copy is pinned for writing: the spill file's copy is stale after it. */
        for (; j < n->nacc && s == DAGR_OK; j++)
            s = data_pin(n->acc[j].h, n->acc[j].mode & DAGR_WRITE ? PIN_WRITE : PIN_READ);
        if (s != DAGR_OK)
            for (int k = 0; k < j - 1; k++)
                data_unpin(n->acc[k].h);
        t->pinned_host = s == DAGR_OK;
    } else {
        for (int j = 0; j < n->nacc && s == DAGR_OK; j++)
            s = data_ensure_buf(n->acc[j].h);
    }
    for (int j = 0; j < n->nacc; j++) {
        bool load = atomic_exchange(&t->out[j], false);
        dagr_data_t *h = n->acc[j].h;
        struct dev_copy *c = &h->dev[d->index];
        if (!load) continue;
        /* Another device holds the current version: it goes through the host copy. */
        if (s == DAGR_OK && data_dirty_hint(h)) s = device_writeback(h);
        if (s != DAGR_OK) { /* nothing to load from: the copy holds nothing valid */
            pthread_mutex_lock(&d->lock);
            c->have = false;
            pthread_mutex_unlock(&d->lock);
            atomic_store(&c->loaded, true);
            continue;
        }
        copy_host(d, h, c, true, &c->loaded);
        pthread_mutex_lock(&d->lock);
        d->st.copies_in++;
        d->st.bytes_in += h->bytes;
        pthread_mutex_unlock(&d->lock);
    }
    if (s != DAGR_OK) {
        t->status = s;
        snprintf(t->msg, sizeof t->msg, "%s", dagr_last_error());
    }
}

static bool loaded(device_t *d, const dtask_t *t) {
    for (int j = 0; j < t->n->nacc; j++) {
        const dagr_data_t *h = t->n->acc[j].h;
        if (h->bytes && !atomic_load_explicit(&h->dev[d->index].loaded, memory_order_acquire))
            return false;
    }
    return true;
}

/* Unlocked: the bodies, on the device's copies. */
static dagr_task_result_t run_body(device_t *d, dtask_t *t) {
    dagr_ctx_t *ctx = d->ctx;
    node_t *n = t->n;
    enum { STACK = 16 };
    void *bs[STACK], **bufs = n->nacc <= STACK ? bs : malloc((size_t)n->nacc * sizeof *bufs);
    size_t ls[STACK], *lds = n->nacc <= STACK ? ls : malloc((size_t)n->nacc * sizeof *lds);
    task_note_t note;
    task_note_init(&note, n, d->index);
    if (d->gpu) {
        note.gpu = true;
        note.stream = d->ops->stream(d->impl);
    }
    dagr_task_result_t r = DAGR_TASK_ERROR;
    if (!bufs || !lds) {
        note.status = DAGR_ERR_NOMEM;
        snprintf(note.msg, sizeof note.msg, "cannot allocate the view of %d accesses", n->nacc);
    } else {
        for (int j = 0; j < n->nacc; j++) {
            dagr_data_t *h = n->acc[j].h;
            bufs[j] = h->dev[d->index].buf;
            lds[j] = h->rows; /* device copies are packed */
        }
        int64_t t0 = ctx->trace ? trace_ticks() : 0;
        double c0 = dagr_now();
        r = task_call(ctx, n, d->worker, bufs, lds, &note);
        /* A GPU's body only queued its work: the task is done when its stream is. A body that
         * failed or asked to run again may have queued some too: its copies are released next. */
        const char *err = d->gpu && r != DAGR_TASK_ASYNC ? d->ops->sync(d->impl) : NULL;
        if (err && r == DAGR_TASK_DONE) {
            r = DAGR_TASK_ERROR;
            note.status = DAGR_ERR_GPU;
            snprintf(note.msg, sizeof note.msg, "%s", err);
        }
        double secs = dagr_now() - c0;
        if (r == DAGR_TASK_DONE) pm_record(ctx, n, class_of(d), secs);
        pthread_mutex_lock(&d->lock);
        d->st.busy_seconds += secs;
        pthread_mutex_unlock(&d->lock);
        if (ctx->trace) trace_task(ctx, n, d->worker, t0, r != DAGR_TASK_RETRY);
    }
    if (bufs != bs) free(bufs);
    if (lds != ls) free(lds);
    t->status = note.status;
    snprintf(t->msg, sizeof t->msg, "%s", note.msg);
    if (r == DAGR_TASK_ASYNC) {
        if (note.forced) task_failed(ctx, n, note.status, note.msg);
        pthread_mutex_lock(&d->lock);
        t->stage = ST_ASYNC;
        pthread_mutex_unlock(&d->lock);
        token_arrive(note.token); /* device_task_done, now or later */
    }
    return r;
}

/* Device lock held: starts copying back what the task wrote (ST_OUT), or ends it. */
static void start_out(device_t *d, dtask_t *t) {
    node_t *n = t->n;
    t->stage = ST_OUT;
    for (int j = 0; j < n->nacc; j++) {
        dagr_data_t *h = n->acc[j].h;
        atomic_store(&t->out[j], true);
        if (!(n->acc[j].mode & DAGR_WRITE) || !h->bytes || t->status != DAGR_OK || lazy(d->ctx, h))
            continue;
        atomic_store(&t->out[j], false);
        d->st.copies_out++;
        d->st.bytes_out += h->bytes;
        copy_host(d, h, &h->dev[d->index], false, &t->out[j]);
    }
}

static bool out_done(const dtask_t *t) {
    for (int j = 0; j < t->n->nacc; j++)
        if (!atomic_load_explicit(&t->out[j], memory_order_acquire)) return false;
    return true;
}

/* Device lock held, on entry and on return (dropped meanwhile): the task's end. What it wrote
 * takes a new generation on the device's copy and the handle together: the host copy holds it
 * too (written through), or the device's copy is the only current one (h->dirty). */
static void finish(device_t *d, int i) {
    dtask_t *t = d->active[i];
    memmove(&d->active[i], &d->active[i + 1], (size_t)(d->nactive - i - 1) * sizeof *d->active);
    d->nactive--;
    node_t *n = t->n;
    for (int j = 0; j < n->nacc; j++) {
        dagr_data_t *h = n->acc[j].h;
        struct dev_copy *c = &h->dev[d->index];
        if (!(n->acc[j].mode & DAGR_WRITE)) continue;
        pthread_mutex_lock(&h->lock);
        if (t->status == DAGR_OK) {
            data_written_locked(h);
            c->wgen = h->wgen;
            if (h->bytes && lazy(d->ctx, h)) h->dirty = (int8_t)(d->index + 1);
        } else if (h->dirty != d->index + 1) {
            /* The body may have changed it: the host copy keeps the version before the task. */
            c->have = false;
        }
        /* A failed task on the only current copy leaves it as its body left it, as a failed
         * host task leaves the host copy. */
        pthread_mutex_unlock(&h->lock);
    }
    release(d, t, n->nacc);
    d->st.tasks++;
    dequeue(d, n);
    pthread_mutex_unlock(&d->lock);
    task_finish(d->ctx, n, t->status, t->msg, t->pinned_host ? n->nacc : 0);
    dtask_free(t);
    pthread_mutex_lock(&d->lock);
}

void device_task_done(dagr_ctx_t *ctx, node_t *n, int di, dagr_status_t status, const char *why) {
    device_t *d = ctx->devs[di];
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < d->nactive; i++) {
        dtask_t *t = d->active[i];
        if (t->n != n) continue;
        if (status != DAGR_OK || n->failed) {
            t->status = status != DAGR_OK ? status : DAGR_ERR_TASK;
            snprintf(t->msg, sizeof t->msg, "%s", why ? why : "");
        }
        start_out(d, t);
        break;
    }
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

void device_copy_done(device_t *d) {
    pthread_mutex_lock(&d->lock);
    pthread_cond_broadcast(&d->cond); /* the worker, and a write-back waiting (wait_copy) */
    pthread_mutex_unlock(&d->lock);
}

/* Device lock held: admits ready tasks while there is room (DEPTH and memory). Returns
 * whether anything changed. */
static bool admit(device_t *d) {
    dagr_ctx_t *ctx = d->ctx;
    bool any = false;
    while (d->nactive < DEPTH && d->rq.n) {
        node_t *n = d->rq.heap[0];
        if (atomic_load(&n->poisoned)) {
            rq_pop(&d->rq);
            dequeue(d, n);
            pthread_mutex_unlock(&d->lock);
            node_complete(ctx, n);
            pthread_mutex_lock(&d->lock);
            any = true;
            continue;
        }
        int a = make_room(d, n);
        if (a == ADMIT_WAIT) break;
        /* A write-back dropped the lock: a task pushed meanwhile may come first now. */
        if (d->rq.heap[0] != n) {
            any = true;
            continue;
        }
        rq_pop(&d->rq);
        any = true;
        dtask_t *t = a == ADMIT_OK ? dtask_new(n) : NULL;
        int pinned = t ? reserve(d, t) : 0;
        if (t && pinned < n->nacc) {
            release(d, t, pinned);
            dtask_free(t);
            t = NULL;
        }
        if (!t) { /* never fits, or no memory for the copies: the host runs it */
            dequeue(d, n);
            pthread_mutex_unlock(&d->lock);
            sched_push_host(ctx, n);
            pthread_mutex_lock(&d->lock);
            continue;
        }
        d->active[d->nactive++] = t;
        pthread_mutex_unlock(&d->lock);
        start_in(d, t);
        pthread_mutex_lock(&d->lock);
    }
    return any;
}

/* Device lock held: starts loading, ahead of their turn, the inputs of the next PREFETCH
 * tasks of the queue (the heap's first entries: about the next ones) that wait because DEPTH
 * tasks are in flight, so that the copy engine keeps moving while bodies run. Only into free
 * memory (a prefetch never evicts), only host copies that are current and in memory (not out
 * of core, not newer on another device), MAX_PREFETCH at a time. Each such copy is pinned and
 * its handle held until it is loaded (prefetch_reap); a task admitted meanwhile waits for the
 * same load. The versions are stable: a task in the queue is ready, so its inputs' writers are
 * done, and their next writers wait for it. */
static void prefetch(device_t *d) {
    dagr_ctx_t *ctx = d->ctx;
    if (ctx->store || d->nactive < DEPTH) return;
    for (size_t q = 0; q < d->rq.n && q < PREFETCH; q++) {
        node_t *n = d->rq.heap[q];
        for (int j = 0; j < n->nacc; j++) {
            if (d->npf == MAX_PREFETCH) return;
            dagr_data_t *h = n->acc[j].h;
            if (!(n->acc[j].mode & DAGR_READ) || !h->bytes || h->dynamic || !h->buf ||
                data_dirty_hint(h))
                continue;
            struct dev_copy *c = copy_of(d, h);
            uint64_t g = host_gen(h);
            if (!c || c->pins || (c->have && c->wgen == g)) continue;
            if (!c->buf && d->used + h->bytes > d->budget) return;
            if (c->buf && c->bytes != h->bytes) continue;
            if (!data_ref_if_alive(h)) continue;
            if (!c->buf) {
                c->buf = d->ops->alloc(d->impl, h->bytes);
                if (!c->buf) {
                    pthread_mutex_unlock(&d->lock); /* data_unref may forget h: see the top */
                    data_unref(h);
                    pthread_mutex_lock(&d->lock);
                    return;
                }
                c->bytes = h->bytes;
                d->used += h->bytes;
                if (d->used > d->st.peak) d->st.peak = d->used;
            }
            lru_remove(d, c);
            c->pins++;
            c->have = true;
            c->wgen = g;
            atomic_store_explicit(&c->loaded, false, memory_order_relaxed);
            d->pf[d->npf++] = c;
            d->st.prefetches++;
            d->st.copies_in++;
            d->st.bytes_in += h->bytes;
            copy_host(d, h, c, true, &c->loaded);
        }
    }
}

/* Device lock held (dropped meanwhile): the prefetched copies that are loaded join the cache,
 * and their handles are let go. Returns whether any was. */
static bool prefetch_reap(device_t *d) {
    dagr_data_t *done[MAX_PREFETCH];
    int nd = 0;
    for (int i = 0; i < d->npf;) {
        struct dev_copy *c = d->pf[i];
        if (!atomic_load_explicit(&c->loaded, memory_order_acquire)) {
            i++;
            continue;
        }
        done[nd++] = c->h;
        copy_unpin(d, c);
        d->pf[i] = d->pf[--d->npf];
    }
    if (!nd) return false;
    pthread_mutex_unlock(&d->lock);
    for (int i = 0; i < nd; i++)
        data_unref(done[i]);
    pthread_mutex_lock(&d->lock);
    return true;
}

static void *device_main(void *p) {
    device_t *d = p;
    dagr_ctx_t *ctx = d->ctx;
    if (ctx->cfg.worker_init) ctx->cfg.worker_init(d->worker, ctx->cfg.worker_init_arg);
    pthread_mutex_lock(&d->lock);
    for (;;) {
        bool any = prefetch_reap(d);
        any |= admit(d);
        prefetch(d);
        /* The oldest task whose copies are in runs; ended ones finish. */
        for (int i = 0; i < d->nactive; i++) {
            dtask_t *t = d->active[i];
            /* A task whose copies in could not all start still waits for those that did: its
             * copies are released at its end (start_in marks the others loaded). */
            if (t->stage == ST_IN && loaded(d, t)) {
                any = true;
                if (t->status != DAGR_OK) { /* its host copies could not be had */
                    finish(d, i);
                    break;
                }
                t->stage = ST_RUNNING;
                pthread_mutex_unlock(&d->lock);
                dagr_task_result_t r = run_body(d, t);
                pthread_mutex_lock(&d->lock);
                if (r == DAGR_TASK_ASYNC) break; /* device_task_done takes it on */
                if (r == DAGR_TASK_RETRY) {
                    /* Not now: back to the queue, its copies given back. */
                    memmove(&d->active[i], &d->active[i + 1],
                            (size_t)(d->nactive - i - 1) * sizeof *d->active);
                    d->nactive--;
                    release(d, t, t->n->nacc);
                    node_t *n = t->n;
                    dequeue(d, n);
                    n->est_ns = 0; /* not requeued here: the host runs it (eligible) */
                    bool pinned = t->pinned_host;
                    dtask_free(t);
                    n->retried = true;
                    pthread_mutex_unlock(&d->lock);
                    for (int j = 0; pinned && j < n->nacc; j++)
                        data_unpin(n->acc[j].h);
                    pthread_mutex_lock(&d->lock);
                    if (!rq_push(&d->rq, n)) {
                        pthread_mutex_unlock(&d->lock);
                        sched_push_failed(ctx, n);
                        pthread_mutex_lock(&d->lock);
                    }
                    break;
                }
                if (r != DAGR_TASK_DONE && t->status == DAGR_OK) t->status = DAGR_ERR_TASK;
                start_out(d, t);
                break;
            }
            if (t->stage == ST_OUT && out_done(t)) {
                any = true;
                finish(d, i);
                break;
            }
        }
        if (any) continue;
        if (d->stop && d->nactive == 0 && d->rq.n == 0 && d->npf == 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 2000000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->cond, &d->lock, &ts);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Placement
 * ---------------------------------------------------------------------------------------- */

/* Tasks on an owner's strided home (dagr_data_attach_2d with ld > rows: a ScaLAPACK local
 * array's tile) are promised the caller's array itself: they go to a device, which works on a
 * packed copy, only when their options ask for one. */
static bool eligible(const dagr_ctx_t *ctx, const node_t *n) {
    if (n->kind != NODE_TASK || n->retried || n->where == DAGR_WHERE_CPU) return false;
    if (n->where == DAGR_WHERE_DEVICE) return true;
    for (int j = 0; j < n->nacc; j++) {
        const dagr_data_t *h = n->acc[j].h;
        if (h->owner == ctx->rank && data_strided(h)) return false;
    }
    return true;
}

static size_t device_load(const device_t *d) {
    return __atomic_load_n(&d->rq.n, __ATOMIC_RELAXED) +
           (size_t)__atomic_load_n(&d->nactive, __ATOMIC_RELAXED);
}

bool device_busy(const dagr_ctx_t *ctx) {
    for (int i = 0; i < ctx->ndev; i++)
        if (device_load(ctx->devs[i])) return true;
    return false;
}

/* Bytes per second d's copies move: measured once they have moved 4 MiB, nominal before (a GPU
 * over PCIe or NVLink from pageable memory; a test device's memcpy). A hint: no locks. */
static double copy_rate(const device_t *d) {
    double bytes = (double)(__atomic_load_n(&d->st.bytes_in, __ATOMIC_RELAXED) +
                            __atomic_load_n(&d->st.bytes_out, __ATOMIC_RELAXED));
    double secs = bytes >= 4.0 * (1 << 20) ? d->ops->busy(d->impl) : 0.0;
    return secs > 0 ? bytes / secs : d->gpu ? 10e9 : 4e9;
}

/* Seconds to bring what n reads to d (NULL: the host): what d holds no current copy of, and
 * before that what only another device holds (lazy write-back), copied back to the host. A
 * hint: read without locks. */
static double seconds_in(const dagr_ctx_t *ctx, const device_t *d, const node_t *n,
                         const double *rate) {
    double s = 0.0;
    for (int j = 0; j < n->nacc; j++) {
        const dagr_data_t *h = n->acc[j].h;
        if (!(n->acc[j].mode & DAGR_READ) || !h->bytes) continue;
        int dirty = __atomic_load_n(&h->dirty, __ATOMIC_RELAXED) - 1;
        if (d && dirty == d->index) continue; /* only d has it, current */
        if (dirty >= 0 && dirty < ctx->ndev) s += (double)h->bytes / rate[dirty];
        if (!d) continue;
        const struct dev_copy *c = h->dev ? &h->dev[d->index] : NULL;
        if (!c || !c->have || c->wgen != __atomic_load_n(&h->wgen, __ATOMIC_RELAXED))
            s += (double)h->bytes / rate[d->index];
    }
    return s;
}

/* Where n is expected to finish first (StarPU's dmda): for the host and for each device that
 * can run it, the expected run time of the work queued there (the host's shared by its
 * workers), plus the time to bring n's inputs there, plus n's own expected run time there
 * (perfmodel.c). While a class that can run n has not yet run PM_CALIB tasks of its kernel at
 * its size, n goes to that class, so that it gets measured. Ties go to the host. A task
 * placed on the host leaves here with its expected run time in n->est_ns. */
bool device_place(dagr_ctx_t *ctx, node_t *n) {
    n->est_ns = 0;
    if (!eligible(ctx, n)) return false;
    bool must = n->where == DAGR_WHERE_DEVICE;
    bool can[PM_CLASSES] = {[PM_HOST] = !must};
    double rate[MAX_DEVICES];
    for (int i = 0; i < ctx->ndev; i++) {
        device_t *d = ctx->devs[i];
        rate[i] = copy_rate(d);
        if (!d->gpu || n->dev_fn) can[class_of(d)] = true; /* a GPU runs device bodies only */
    }
    pm_estimate_t e;
    pm_estimate(ctx, n, &e);
    int calib = -1;
    for (int c = 0; c < PM_CLASSES && n->where == DAGR_WHERE_ANY; c++)
        if (can[c] && e.tried[c] < PM_CALIB && (calib < 0 || e.tried[c] < e.tried[calib]))
            calib = c;

    device_t *best = NULL;
    double best_t = INFINITY;
    if (can[PM_HOST] && (calib < 0 || calib == PM_HOST)) {
        double queued = (double)atomic_load_explicit(&ctx->host_queued_ns, memory_order_relaxed);
        best_t = queued * 1e-9 / ctx->cfg.threads + seconds_in(ctx, NULL, n, rate) +
                 fmax(e.seconds[PM_HOST], 0.0);
    }
    for (int i = 0; i < ctx->ndev; i++) {
        device_t *d = ctx->devs[i];
        pm_class_t c = class_of(d);
        if (!can[c] || (d->gpu && !n->dev_fn) || (calib >= 0 && calib != (int)c)) continue;
        double queued = (double)atomic_load_explicit(&d->queued_ns, memory_order_relaxed);
        double t = queued * 1e-9 + seconds_in(ctx, d, n, rate) + fmax(e.seconds[c], 0.0);
        if (t < best_t) best_t = t, best = d;
    }
    pm_class_t chosen = best ? class_of(best) : PM_HOST;
    if (calib >= 0) pm_calibrating(ctx, n, chosen);
    n->est_ns = (int64_t)(fmax(e.seconds[chosen], 0.0) * 1e9);
    if (!best) return false;

    device_t *d = best;
    /* A handle whose size tasks decide starts a version written with DAGR_WRITE empty, as on
     * the host (sched.c): its body sets the size. The task is ready: nobody else uses it. */
    for (int j = 0; j < n->nacc; j++)
        if (n->acc[j].mode == DAGR_WRITE && n->acc[j].h->dynamic)
            (void)data_set_size(n->acc[j].h, 0, SIZE_DROP); /* only frees: never fails */
    atomic_fetch_add_explicit(&d->queued_ns, n->est_ns, memory_order_relaxed);
    pthread_mutex_lock(&d->lock);
    bool ok = rq_push(&d->rq, n);
    if (ok) pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (!ok) {
        dequeue(d, n);
        sched_push_failed(ctx, n);
    }
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Start, stop, statistics
 * ---------------------------------------------------------------------------------------- */

int device_planned(const dagr_ctx_t *ctx) {
    return ctx->denv.test_devices + (ctx->gpu ? ctx->gpu->count : 0);
}

/* Devices 0 .. test_devices - 1 are test devices, the GPUs the rank found (gpu/gpu.h; none
 * without CUDA) come after them. */
dagr_status_t device_start(dagr_ctx_t *ctx) {
    int ntest = ctx->denv.test_devices, nd = device_planned(ctx);
    if (nd == 0) return DAGR_OK;
    DAGR_TRY(pm_start(ctx));
    ctx->devs = calloc((size_t)nd, sizeof *ctx->devs);
    DAGR_CHECK(ctx->devs, DAGR_ERR_NOMEM, "cannot allocate %d devices", nd);
    pthread_mutex_init(&ctx->dev_wb_lock, NULL); /* destroyed with ctx->devs */
    for (int i = 0; i < nd; i++) {
        device_t *d = calloc(1, sizeof *d);
        DAGR_CHECK(d, DAGR_ERR_NOMEM, "cannot allocate device %d", i);
        d->ctx = ctx;
        d->index = i;
        d->worker = ctx->cfg.threads + i;
        d->gpu = i >= ntest;
        d->ops = &testdev_ops;
        d->budget = ctx->denv.test_memory;
#ifdef DAGR_HAVE_CUDA
        if (d->gpu) {
            d->ops = &cuda_ops;
            d->budget = ctx->gpu->budget[i - ntest];
        }
#endif
        d->st.memory = d->budget;
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->cond, NULL);
        ctx->devs[i] = d;
        ctx->ndev = i + 1;
#ifdef DAGR_HAVE_CUDA
        if (d->gpu) {
            int id = ctx->gpu->ids[i - ntest];
            d->impl = cuda_node_start(ctx, d, id);
            DAGR_CHECK(d->impl, DAGR_ERR_GPU, "cannot make the streams of GPU %d on rank %d", id,
                       ctx->rank);
        }
#endif
        if (!d->gpu) d->impl = testdev_start(ctx, d, i, d->budget, ctx->denv.test_delay_us);
        DAGR_CHECK(d->impl, DAGR_ERR_NOMEM, "cannot start test device %d", i);
        DAGR_CHECK(pthread_create(&d->thread, NULL, device_main, d) == 0, DAGR_ERR_NOMEM,
                   "cannot start the worker of device %d", i);
        d->have_thread = true;
    }
    return DAGR_OK;
}

/* After the host workers stopped: stops and frees the devices. Nothing is in flight after a
 * successful wait; after a divergence, tasks still queued are dropped with the context. */
void device_stop(dagr_ctx_t *ctx) {
    for (int i = 0; i < ctx->ndev; i++) {
        device_t *d = ctx->devs[i];
        if (d->have_thread) {
            pthread_mutex_lock(&d->lock);
            d->stop = true;
            d->rq.n = 0;
            pthread_cond_signal(&d->cond);
            pthread_mutex_unlock(&d->lock);
            pthread_join(d->thread, NULL);
        }
        if (d->impl) d->ops->stop(d->impl);
        /* Every handle is gone by now (device_forget freed their copies), except after a
         * divergence, whose handles stay allocated. */
        rq_free(&d->rq);
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        free(d);
    }
    if (ctx->devs) pthread_mutex_destroy(&ctx->dev_wb_lock);
    free(ctx->devs);
    ctx->devs = NULL;
    ctx->ndev = 0;
    pm_stop(ctx);
}

int dagr_devices(const dagr_ctx_t *ctx) {
    return ctx ? ctx->ndev : 0;
}

dagr_status_t dagr_device_stats(const dagr_ctx_t *ctx, int device, dagr_device_stats_t *out) {
    DAGR_CHECK(ctx && out, DAGR_ERR_ARG, "ctx or out is NULL");
    DAGR_CHECK(device >= 0 && device < ctx->ndev, DAGR_ERR_ARG, "device %d out of range [0, %d)",
               device, ctx->ndev);
    device_t *d = ctx->devs[device];
    pthread_mutex_lock(&d->lock);
    *out = d->st;
    out->used = d->used;
    pthread_mutex_unlock(&d->lock);
    out->kind = d->ops->kind;
    out->copy_seconds = d->ops->busy(d->impl);
    return DAGR_OK;
}
