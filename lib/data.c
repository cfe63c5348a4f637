/* Data handles: creation, the local buffer and its lifetime, the holder's bitset of ranks
 * that hold the latest version, and in-order queues (which are zero-byte handles). */
#include "lib_impl.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Buffers from this size on ask for transparent huge pages (where the system gives them on
 * request, "madvise" mode): their first touch then faults once per 2 MB, not per 4 KB, and
 * in a virtual machine a fault is dear (a table partition of 30 MB spent a quarter of a CSV
 * read's time faulting). */
#define HUGE_FROM ((size_t)4 << 20)

void *data_alloc_zeroed(size_t bytes, bool zero) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = rounded >= POOL_MIN ? pool_alloc(rounded) : NULL;
    if (p) {
        if (zero) memset(p, 0, rounded);
        return p;
    }
    p = aligned_alloc(64, rounded ? rounded : 64);
    if (p && rounded >= HUGE_FROM) {
        uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
        uintptr_t e = ((uintptr_t)p + rounded) & ~(uintptr_t)4095;
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* a hint: failure changes nothing */
    }
    if (p && zero) memset(p, 0, rounded);
    return p;
}

void data_buf_free(void *p) {
    if (p && pool_owns(p))
        pool_free(p);
    else
        free(p);
}

void data_buf_hold(size_t bytes) {
    pool_hold(bytes);
}

void *data_buf_alloc(size_t bytes) {
    return data_alloc_zeroed(bytes, false);
}

void *data_buf_realloc(void *p, size_t bytes) {
    if (!p) return data_buf_alloc(bytes);
    bool pooled = pool_owns(p);
    if (!pooled && bytes < POOL_MIN) return realloc(p, bytes ? bytes : 1);
    size_t old = pooled ? pool_block_bytes(p) : malloc_usable_size(p);
    if (pooled && bytes <= old && bytes >= POOL_MIN) return p; /* room already */
    void *q = data_buf_alloc(bytes);
    if (!q) return NULL; /* p stays valid, as realloc leaves it */
    memcpy(q, p, old < bytes ? old : bytes);
    data_buf_free(p);
    return q;
}

static size_t have_words(const dagr_ctx_t *ctx) {
    return ((size_t)ctx->size + 63) / 64;
}

typedef struct shape {
    size_t rows, cols, ld, elsize;
} shape_t;

static dagr_status_t data_new(dagr_ctx_t *ctx, void *ptr, shape_t sh, int owner, bool attached,
                              dagr_data_t **out) {
    size_t bytes = sh.rows * sh.cols * sh.elsize;
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    DAGR_CHECK(!ctx->broken, DAGR_ERR_DIVERGED, "%s", ctx->broken_msg);
    DAGR_CHECK(owner >= 0 && owner < ctx->size, DAGR_ERR_ARG, "owner %d out of range [0, %d)",
               owner, ctx->size);
    DAGR_CHECK(!attached || owner != ctx->rank || ptr || bytes == 0, DAGR_ERR_ARG,
               "ptr is NULL on the owner rank %d while bytes = %zu", owner, bytes);

    dagr_data_t *h = calloc(1, sizeof *h);
    DAGR_CHECK(h, DAGR_ERR_NOMEM, "cannot allocate a data handle");
    h->ctx = ctx;
    h->id = ctx->next_data_id++;
    h->bytes = bytes;
    h->rows = sh.rows;
    h->cols = sh.cols;
    h->elsize = sh.elsize;
    h->home_ld = sh.ld;
    h->owner = owner;
    h->attached = attached;
    h->holder = owner;
    h->local_version = -1;
    h->slot = NULL;
    h->have = calloc(have_words(ctx), sizeof *h->have);
    if (!h->have) {
        free(h);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate a data handle");
    }
    data_have_set(h, owner);
    atomic_init(&h->refs, 1);
    pthread_mutex_init(&h->lock, NULL);
    /* Out of core, a home of ours starts as zeros not yet allocated (store.c). */
    bool lazy = ctx->store && !attached && bytes;
    if (owner == ctx->rank) {
        h->home = attached ? ptr : (bytes && !lazy ? data_alloc_zeroed(bytes, true) : NULL);
        if (bytes && !lazy && !h->home) {
            pthread_mutex_destroy(&h->lock);
            free(h->have);
            free(h);
            return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %zu bytes for a data handle", bytes);
        }
        h->buf = h->home;
        h->buf_kind = BUF_HOME;
        h->local_version = 0;
        h->spilled = lazy;
    }
    divergence_mix(&ctx->div, 0xda7a0000u ^ (uint64_t)attached);
    divergence_mix(&ctx->div, bytes);
    divergence_mix(&ctx->div, sh.rows);
    divergence_mix(&ctx->div, (uint64_t)owner);

    h->next = ctx->live;
    if (ctx->live) ctx->live->prev = h;
    ctx->live = h;
    *out = h;
    return DAGR_OK;
}

dagr_status_t dagr_data_create(dagr_ctx_t *ctx, size_t bytes, int owner, dagr_data_t **out) {
    return data_new(ctx, NULL, (shape_t){bytes, 1, bytes, 1}, owner, false, out);
}

dagr_status_t dagr_data_create_dynamic(dagr_ctx_t *ctx, int owner, dagr_data_t **out) {
    DAGR_TRY(data_new(ctx, NULL, (shape_t){0, 1, 0, 1}, owner, false, out));
    (*out)->dynamic = true;
    divergence_mix(&ctx->div, 0xd1a0000u);
    return DAGR_OK;
}

dagr_status_t dagr_data_attach(dagr_ctx_t *ctx, void *ptr, size_t bytes, int owner,
                               dagr_data_t **out) {
    return data_new(ctx, ptr, (shape_t){bytes, 1, bytes, 1}, owner, true, out);
}

dagr_status_t dagr_data_create_2d(dagr_ctx_t *ctx, size_t rows, size_t cols, size_t elsize,
                                  int owner, dagr_data_t **out) {
    DAGR_CHECK(elsize > 0, DAGR_ERR_ARG, "elsize is 0");
    DAGR_CHECK(cols == 0 || rows <= SIZE_MAX / elsize / cols, DAGR_ERR_ARG,
               "a %zu x %zu matrix of %zu-byte elements overflows size_t", rows, cols, elsize);
    if (rows == 0 || cols == 0)
        return data_new(ctx, NULL, (shape_t){0, 1, 0, 1}, owner, false, out);
    return data_new(ctx, NULL, (shape_t){rows, cols, rows, elsize}, owner, false, out);
}

dagr_status_t dagr_data_attach_2d(dagr_ctx_t *ctx, void *ptr, size_t rows, size_t cols, size_t ld,
                                  size_t elsize, int owner, dagr_data_t **out) {
    DAGR_CHECK(elsize > 0, DAGR_ERR_ARG, "elsize is 0");
    /* ld describes the owner's buffer; other ranks' values are not used. */
    if (ctx && owner != ctx->rank) ld = rows;
    DAGR_CHECK(ld >= rows, DAGR_ERR_ARG, "ld %zu must be >= rows %zu", ld, rows);
    DAGR_CHECK(cols == 0 || rows <= SIZE_MAX / elsize / cols, DAGR_ERR_ARG,
               "a %zu x %zu matrix of %zu-byte elements overflows size_t", rows, cols, elsize);
    /* An empty matrix is stored as a plain zero-byte handle. */
    if (rows == 0 || cols == 0) return data_new(ctx, ptr, (shape_t){0, 1, 0, 1}, owner, true, out);
    return data_new(ctx, ptr, (shape_t){rows, cols, ld, elsize}, owner, true, out);
}

size_t data_ld(const dagr_data_t *h) {
    return h->buf_kind == BUF_HOME ? h->home_ld : h->rows;
}

void data_pack(const dagr_data_t *h, void *dst) {
    size_t col = h->rows * h->elsize, stride = h->home_ld * h->elsize;
    const char *src = h->home;
    for (size_t j = 0; j < h->cols; j++)
        memcpy((char *)dst + j * col, src + j * stride, col);
}

void data_unpack(dagr_data_t *h, const void *src) {
    size_t col = h->rows * h->elsize, stride = h->home_ld * h->elsize;
    char *dst = h->home;
    for (size_t j = 0; j < h->cols; j++)
        memcpy(dst + j * stride, (const char *)src + j * col, col);
}

size_t dagr_data_bytes(const dagr_data_t *data) {
    return data ? data->bytes : 0;
}
int dagr_data_owner(const dagr_data_t *data) {
    return data ? data->owner : -1;
}

data_shape_t data_shape(const dagr_data_t *h) {
    return (data_shape_t){h->rows, h->cols, h->elsize, h->owner, h->dynamic};
}

static int by_id(const void *a, const void *b) {
    uint64_t x = (*(dagr_data_t *const *)a)->id, y = (*(dagr_data_t *const *)b)->id;
    return x < y ? -1 : x > y;
}

dagr_status_t ctx_live_data(dagr_ctx_t *ctx, dagr_data_t ***out, int64_t *n) {
    int64_t k = 0;
    for (dagr_data_t *h = ctx->live; h; h = h->next)
        k += !h->is_queue;
    *out = NULL;
    *n = k;
    if (k == 0) return DAGR_OK;
    dagr_data_t **v = malloc((size_t)k * sizeof *v);
    DAGR_CHECK(v, DAGR_ERR_NOMEM, "cannot allocate the list of %lld data handles", (long long)k);
    k = 0;
    for (dagr_data_t *h = ctx->live; h; h = h->next)
        if (!h->is_queue) v[k++] = h;
    qsort(v, (size_t)k, sizeof *v, by_id);
    *out = v;
    return DAGR_OK;
}

dagr_status_t dagr_data_destroy(dagr_data_t **data) {
    if (!data || !*data) return DAGR_OK;
    dagr_data_t *h = *data;
    *data = NULL;
    divergence_mix(&h->ctx->div, 0xde570000u ^ h->id);
    return data_retire(h);
}

void data_ref(dagr_data_t *h) {
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
}

bool data_ref_if_alive(dagr_data_t *h) {
    int r = atomic_load(&h->refs);
    while (r > 0)
        if (atomic_compare_exchange_weak(&h->refs, &r, r + 1)) return true;
    return false;
}

void data_written(dagr_data_t *h) {
    pthread_mutex_lock(&h->lock);
    data_written_locked(h);
    pthread_mutex_unlock(&h->lock);
}

void data_host_writing(node_t *n) {
    for (int j = 0; j < n->nacc; j++)
        if (n->acc[j].mode & DAGR_WRITE) data_written(n->acc[j].h);
}

/* Frees a copy (never the home), resident or spilled. */
static void buf_free(dagr_data_t *h) {
    data_written_locked(h);
    if (h->ctx->store) store_forget_locked(h);
    if (h->buf_kind == BUF_ARENA)
        comm_arena_free(h->ctx, h->buf, h->bytes);
    else if (h->buf_kind == BUF_HEAP)
        data_buf_free(h->buf);
    h->buf = NULL;
    h->buf_kind = BUF_NONE;
}

void data_unref(dagr_data_t *h) {
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1) return;
    if (h->dev) device_forget(h);
    if (h->ctx->store) store_forget_locked(h);
    if (h->buf_kind != BUF_HOME) buf_free(h);
    if (h->home && !h->attached) data_buf_free(h->home);
    free(h->have);
    free(h->readers);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

dagr_status_t data_set_size(dagr_data_t *h, size_t bytes, size_mode_t mode) {
    bool keep = mode != SIZE_DROP;
    store_t *st = h->ctx->store;
    pthread_mutex_lock(&h->lock);
    size_t old = h->bytes;
    if (bytes == old) {
        pthread_mutex_unlock(&h->lock);
        return DAGR_OK;
    }
    /* A new buffer now when the caller writes into it (keep), and for the owner's home
     * without a memory limit (a home is never allocated later there); otherwise the next
     * pin or receive allocates one of the new size. */
    bool home = h->buf_kind == BUF_HOME;
    void *p = NULL;
    if (bytes && (keep || (home && !st))) {
        /* Zeroing only what nobody writes: a fresh buffer of hundreds of MB costs a pass. */
        p = data_alloc_zeroed(bytes, false);
        if (!p) {
            pthread_mutex_unlock(&h->lock);
            return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %zu bytes for data #%llu", bytes,
                            (unsigned long long)h->id);
        }
        size_t kept = keep && h->buf ? (old < bytes ? old : bytes) : 0;
        if (kept) memcpy(p, h->buf, kept);
        if (mode == SIZE_KEEP) memset((char *)p + kept, 0, ((bytes + 63) & ~(size_t)63) - kept);
    }
    if (h->buf_kind == BUF_ARENA)
        comm_arena_free(h->ctx, h->buf, old);
    else /* a heap copy, or a home of ours (a dynamic handle is never attached) */
        data_buf_free(h->buf);
    h->buf = p;
    if (home)
        h->home = p;
    else
        h->buf_kind = p ? BUF_HEAP : BUF_NONE;
    h->bytes = h->rows = h->home_ld = bytes;
    data_written_locked(h);
    if (st) {
        store_resized_locked(h, old);
        /* Out of core a home without a buffer is zeros not yet allocated (store.c). */
        h->spilled = home && !p && bytes;
    }
    pthread_mutex_unlock(&h->lock);
    return DAGR_OK;
}

/* Without a memory limit only; with one, data_pin does this. */
dagr_status_t data_ensure_buf(dagr_data_t *h) {
    if (h->bytes == 0) return DAGR_OK;
    pthread_mutex_lock(&h->lock);
    if (!h->buf) {
        if (h->home) {
            h->buf = h->home;
            h->buf_kind = BUF_HOME;
        } else {
            /* Copies made by a write live on the heap: the arena is kept for landing data. */
            h->buf = data_alloc_zeroed(h->bytes, true);
            h->buf_kind = h->buf ? BUF_HEAP : BUF_NONE;
        }
    }
    bool ok = h->buf != NULL;
    pthread_mutex_unlock(&h->lock);
    DAGR_CHECK(ok, DAGR_ERR_NOMEM, "cannot allocate %zu bytes for a copy of data #%llu", h->bytes,
               (unsigned long long)h->id);
    return DAGR_OK;
}

void data_pending_add(dagr_data_t *h) {
    pthread_mutex_lock(&h->lock);
    h->pending++;
    pthread_mutex_unlock(&h->lock);
}

/* A copy is stale when a newer version exists than the one it holds. Stale copies off the
 * owner are freed as soon as nobody local uses them: that keeps memory flat in long runs. */
static void free_if_stale_locked(dagr_data_t *h) {
    if (h->pending == 0 && (h->buf || h->spilled) && h->buf_kind != BUF_HOME &&
        h->local_version != (int64_t)h->version) {
        buf_free(h);
        h->local_version = -1;
    }
}

void data_pending_done(dagr_data_t *h) {
    pthread_mutex_lock(&h->lock);
    h->pending--;
    free_if_stale_locked(h);
    pthread_mutex_unlock(&h->lock);
}

void data_superseded(dagr_data_t *h, int new_holder) {
    pthread_mutex_lock(&h->lock);
    h->version++;
    free_if_stale_locked(h);
    pthread_mutex_unlock(&h->lock);
    h->holder = new_holder;
    data_have_reset(h, new_holder);
}

void data_flush_copies(dagr_data_t *h) {
    dagr_ctx_t *ctx = h->ctx;
    data_have_reset(h, h->owner);
    if (h->owner == ctx->rank) return;
    pthread_mutex_lock(&h->lock);
    if (h->pending == 0) {
        if (h->buf || h->spilled) buf_free(h);
        h->local_version = -1;
    }
    pthread_mutex_unlock(&h->lock);
}

bool data_have_test(dagr_data_t *h, int rank) {
    return (h->have[rank / 64] >> (rank % 64)) & 1u;
}

void data_have_set(dagr_data_t *h, int rank) {
    h->have[rank / 64] |= (uint64_t)1 << (rank % 64);
}

/* Only `holder` has the latest version now. The bitset is kept on every rank (it is tiny)
 * so that no path needs to allocate, but only the holder ever reads it. */
void data_have_reset(dagr_data_t *h, int holder) {
    memset(h->have, 0, have_words(h->ctx) * sizeof *h->have);
    data_have_set(h, holder);
}

/* ------------------------------------------------------------------------------------------
 * In-order queues: a zero-byte handle that every task of the queue reads and writes, so the
 * ordinary dependency rules order them, across ranks too (a zero-byte transfer is a bare
 * notification).
 * ---------------------------------------------------------------------------------------- */

struct dagr_queue {
    dagr_data_t *h;
};

dagr_status_t dagr_queue_create(dagr_ctx_t *ctx, dagr_queue_t **out) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    dagr_queue_t *q = malloc(sizeof *q);
    DAGR_CHECK(q, DAGR_ERR_NOMEM, "cannot allocate a queue");
    dagr_status_t s = dagr_data_create(ctx, 0, 0, &q->h);
    if (s != DAGR_OK) {
        free(q);
        return s;
    }
    q->h->is_queue = true;
    *out = q;
    return DAGR_OK;
}

dagr_status_t dagr_queue_destroy(dagr_queue_t **q) {
    if (!q || !*q) return DAGR_OK;
    dagr_status_t s = dagr_data_destroy(&(*q)->h);
    free(*q);
    *q = NULL;
    return s;
}

dagr_data_t *queue_handle(dagr_queue_t *q) {
    return q->h;
}
