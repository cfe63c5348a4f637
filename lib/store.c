/* The out-of-core tile store: with a memory limit, keeps the data dagr allocates on a rank
 * under the limit by spilling buffers nobody is using to a file and reading them back
 * when a task, a transfer or a fetch needs them (data_pin).
 *
 * What counts: the owners' home buffers that dagr allocated and the copies of other ranks'
 * data kept on the heap. What never moves: buffers the caller attached (the caller owns that
 * memory) and receive-arena blocks (they are the RMA window itself, a fixed size). A buffer
 * is spilled only while no thread has it pinned; pending tasks that will use it later do not
 * keep it in memory, so a graph much larger than memory can be inserted ahead.
 *
 * Which buffers go: first those no inserted task will touch (pending == 0), oldest first, then
 * the least recently used of the rest (make_room).
 *
 * Below host memory is the spill file, a memory node (spill.c) reached through the same
 * interface as a device's (mem_ops_t): each handle gets a place there (its slot) the first
 * time it is spilled and keeps it until it dies or changes size; a buffer read back and not
 * written since is dropped again without a write (disk_clean). One file per rank, created at
 * dagr_init in the spill directory and unlinked at once, so that a crashed run leaves nothing
 * behind.
 *
 * A home never touched yet is not even allocated: it is "spilled" as zeros (no slot) and
 * allocated zeroed by the first pin, so that creating an array larger than memory costs
 * nothing until its tiles are used.
 *
 * Locks. h->lock guards a handle's buffer state; the store's lock guards the LRU list and the
 * counters, and is taken after h->lock, never before it (the spill node's own lock is a leaf).
 * Making room walks the LRU holding the store's lock and only *tries* each candidate's lock,
 * skipping one that is busy, so the two orders never wait on each other. The file I/O itself runs
 * without the store's lock, under the lock of the handle being written or read (which freezes it; a
 * reference keeps a victim alive): threads pin, unpin and spill meanwhile, and several
 * transfers can be in flight at once, which a disk with a queue needs.
 *
 * Soft limit. If every resident buffer is pinned, or a write to the file fails (disk full),
 * the pin goes ahead over the limit: the run slows or uses more memory, it does not stop. The
 * first time, rank by rank, a line on stderr says so; dagr_memory_stats counts it. A failed
 * read is different: the data is gone, so the pin fails with DAGR_ERR_IO, and so does the
 * task (or transfer) that needed it. */
#include "lib_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct store {
    dagr_ctx_t *ctx;
    pthread_mutex_t lock;
    const mem_ops_t *below; /* the node spilled buffers go to: the spill file */
    void *below_impl;
    char dir[512];
    dagr_data_t *lru_head, *lru_tail; /* oldest first */
    dagr_memory_stats_t st;           /* spill_file_bytes: the node's, at each read */
    bool warned_over, warned_write;
    /* Tests only (DAGR_SPILL_TEST_FAIL_READ / _WRITE=k): the k-th read-back / write fails as
     * a disk error (EIO) / a full disk (ENOSPC) would; 0: none. */
    long fail_read_at, fail_write_at;
    long reads_done, writes_done;
};

/* ------------------------------------------------------------------------------------------
 * Start and stop
 * ---------------------------------------------------------------------------------------- */

dagr_status_t store_start(dagr_ctx_t *ctx) {
    ctx->store = NULL;
    dagr_status_t s = DAGR_OK;
    char msg[DAGR_ERRMSG_MAX] = "";
    if (ctx->cfg.memory_limit > 0) {
        store_t *st = calloc(1, sizeof *st);
        const char *dir = ctx->cfg.spill_dir;
        if (!dir || !*dir) dir = getenv("TMPDIR");
        if (!dir || !*dir) dir = "/tmp";
        if (!st) {
            s = DAGR_ERR_NOMEM;
            snprintf(msg, sizeof msg, "cannot allocate the tile store");
        } else if (strlen(dir) >= sizeof st->dir) {
            s = DAGR_ERR_ARG;
            snprintf(msg, sizeof msg, "the spill directory's name is longer than %zu bytes",
                     sizeof st->dir - 1);
        } else if (!(st->below_impl = spill_start(dir))) {
            s = DAGR_ERR_IO;
            snprintf(msg, sizeof msg,
                     "rank %d cannot create a spill file in '%s' (DAGR_SPILL_DIR): %s", ctx->rank,
                     dir, strerror(errno));
        }
        if (s == DAGR_OK) {
            st->ctx = ctx;
            st->below = &spill_ops;
            snprintf(st->dir, sizeof st->dir, "%s", dir);
            pthread_mutex_init(&st->lock, NULL);
            st->st.limit = ctx->cfg.memory_limit;
            const char *f = getenv("DAGR_SPILL_TEST_FAIL_READ");
            st->fail_read_at = f ? atol(f) : 0;
            f = getenv("DAGR_SPILL_TEST_FAIL_WRITE");
            st->fail_write_at = f ? atol(f) : 0;
            ctx->store = st;
        } else {
            free(st);
        }
    }
    s = ctx_agree(ctx->comm, s, msg);
    if (s != DAGR_OK) store_stop(ctx);
    return s;
}

/* After every handle is gone (or left behind for good after a divergence). */
void store_stop(dagr_ctx_t *ctx) {
    store_t *st = ctx->store;
    if (!st) return;
    st->below->stop(st->below_impl); /* the file goes, and its disk space */
    pthread_mutex_destroy(&st->lock);
    free(st);
    ctx->store = NULL;
}

const char *store_dir(const dagr_ctx_t *ctx) {
    return ctx->store ? ctx->store->dir : "";
}

dagr_status_t dagr_memory_stats(const dagr_ctx_t *ctx, dagr_memory_stats_t *out) {
    DAGR_CHECK(ctx, DAGR_ERR_ARG, "ctx is NULL");
    DAGR_CHECK(out, DAGR_ERR_ARG, "out is NULL");
    memset(out, 0, sizeof *out);
    store_t *st = ctx->store;
    if (st) {
        pthread_mutex_lock(&st->lock);
        *out = st->st;
        pthread_mutex_unlock(&st->lock);
        out->spill_file_bytes = spill_file_bytes(st->below_impl);
    }
    pool_stats_t ps;
    pool_stats(&ps);
    out->pool_in_use = ps.in_use;
    out->pool_resident = ps.resident;
    out->pool_peak_resident = ps.peak_resident;
    out->pool_given_back = ps.given_back;
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * The LRU list (store lock held)
 * ---------------------------------------------------------------------------------------- */

static void lru_unlink(store_t *st, dagr_data_t *h) {
    if (h->lru_prev)
        h->lru_prev->lru_next = h->lru_next;
    else
        st->lru_head = h->lru_next;
    if (h->lru_next)
        h->lru_next->lru_prev = h->lru_prev;
    else
        st->lru_tail = h->lru_prev;
    h->lru_prev = h->lru_next = NULL;
}

static void lru_append(store_t *st, dagr_data_t *h) {
    h->lru_prev = st->lru_tail;
    h->lru_next = NULL;
    if (st->lru_tail)
        st->lru_tail->lru_next = h;
    else
        st->lru_head = h;
    st->lru_tail = h;
}

static void untrack(store_t *st, dagr_data_t *h) {
    if (!h->tracked) return;
    lru_unlink(st, h);
    h->tracked = false;
    st->st.resident -= h->bytes;
}

void store_forget_locked(dagr_data_t *h) {
    store_t *st = h->ctx->store;
    if (!st) return;
    pthread_mutex_lock(&st->lock);
    untrack(st, h);
    if (h->slot) {
        st->below->free(st->below_impl, h->slot, h->bytes);
        h->slot = NULL;
    }
    pthread_mutex_unlock(&st->lock);
    h->spilled = false;
    h->disk_clean = false;
}

static void make_room(store_t *st, size_t need);

void store_resized_locked(dagr_data_t *h, size_t old_bytes) {
    store_t *st = h->ctx->store;
    pthread_mutex_lock(&st->lock);
    if (h->tracked) {
        lru_unlink(st, h);
        h->tracked = false;
        st->st.resident -= old_bytes;
    }
    if (h->slot) {
        st->below->free(st->below_impl, h->slot, old_bytes);
        h->slot = NULL;
    }
    if (h->buf && h->buf_kind != BUF_ARENA) { /* arena blocks never move */
        h->tracked = true;
        lru_append(st, h);
        st->st.resident += h->bytes;
        if (st->st.resident > st->st.peak) st->st.peak = st->st.resident;
        /* Grown: others make room, as for a buffer read back (h is pinned by its writer). */
        if (h->bytes > old_bytes) make_room(st, 0);
    }
    pthread_mutex_unlock(&st->lock);
    h->disk_clean = false;
}

/* ------------------------------------------------------------------------------------------
 * Spilling and reading back (store lock held)
 * ---------------------------------------------------------------------------------------- */

/* Copies h's buffer to its slot on the spill node (to_node) or back into p. */
static bool node_copy(store_t *st, dagr_data_t *h, void *p, bool to_node) {
    atomic_bool done = false;
    mem_copy_t c = {.dst = to_node ? (void *)h->slot : p,
                    .src = to_node ? p : (const void *)h->slot,
                    .dpitch = h->bytes,
                    .spitch = h->bytes,
                    .width = h->bytes,
                    .height = 1,
                    .to_node = to_node};
    return st->below->copy(st->below_impl, &c, &done);
}

static void warn_once(store_t *st, bool *warned, const char *fmt, const char *detail) {
    if (*warned) return;
    *warned = true;
    fprintf(stderr, "dagr: rank %d: ", st->ctx->rank);
    fprintf(stderr, fmt, detail);
    fputc('\n', stderr);
}

/* The oldest buffer nobody uses, locked and referenced; with `idle`, only one that no
 * inserted task will use either (pending == 0). NULL if none. */
static dagr_data_t *pick_victim(store_t *st, bool idle) {
    for (dagr_data_t *v = st->lru_head; v; v = v->lru_next) {
        if (pthread_mutex_trylock(&v->lock) != 0) continue;
        if (v->pins == 0 && v->buf && (!idle || v->pending == 0) && data_ref_if_alive(v)) return v;
        pthread_mutex_unlock(&v->lock);
    }
    return NULL;
}

/* Store lock held, v locked and referenced by pick_victim: writes v's buffer to its slot
 * (unless the slot already holds it) and frees it; false when the write failed, and v stays
 * as it was. The store's lock is dropped during the write, so that other threads pin, unpin
 * and spill meanwhile (several writes at once); v's own lock, kept, freezes v, and the
 * reference keeps it alive. Returns with the store's lock held and v unlocked and released. */
static bool spill_one(store_t *st, dagr_data_t *v) {
    dagr_ctx_t *ctx = st->ctx;
    lru_unlink(st, v); /* no other thread picks it; its bytes count until they are freed */
    v->tracked = false;
    bool write = !v->disk_clean || !v->slot, ok = true;
    bool inject = write && ++st->writes_done == st->fail_write_at;
    pthread_mutex_unlock(&st->lock);
    double secs = 0;
    int err = 0;
    if (!v->slot && !(v->slot = st->below->alloc(st->below_impl, v->bytes))) {
        ok = false;
        err = ENOMEM;
    } else if (write) {
        int64_t t0 = trace_io_begin(ctx);
        double w0 = dagr_now();
        ok = !inject && node_copy(st, v, v->buf, true);
        err = inject ? ENOSPC : errno;
        secs = dagr_now() - w0;
        if (ok) trace_io_end(ctx, t0, TRACE_IO_SPILL_WRITE, v->bytes, sched_worker_index());
    }
    if (ok) {
        data_buf_free(v->buf);
        if (v->buf_kind == BUF_HOME) v->home = NULL;
        v->buf = NULL;
        v->spilled = true;
        v->disk_clean = true;
    }
    pthread_mutex_lock(&st->lock);
    st->st.io_seconds += secs;
    if (ok) {
        st->st.resident -= v->bytes;
        if (write) {
            st->st.spill_writes++;
            st->st.spill_bytes += v->bytes;
        }
    } else {
        v->tracked = true;
        lru_append(st, v);
        st->st.spill_failures++;
        char why[600];
        snprintf(why, sizeof why, "%s: %s", st->dir, strerror(err));
        warn_once(st, &st->warned_write,
                  "cannot write to the spill file in %s; going over DAGR_MEMORY_LIMIT", why);
    }
    pthread_mutex_unlock(&v->lock);
    /* The last reference forgets v through the store's lock: drop it without holding it. */
    pthread_mutex_unlock(&st->lock);
    data_unref(v);
    pthread_mutex_lock(&st->lock);
    return ok;
}

/* Store lock held (dropped and taken again while writing). Spills buffers until `need` more
 * bytes fit under the limit, or nothing more can go. First those no inserted task will touch
 * (the graph says they are done with for now: in a factorisation, the finished panels),
 * oldest first; then the least recently used of the rest. Plain LRU alone evicts exactly
 * what a sweep over the data needs next. */
static void make_room(store_t *st, size_t need) {
    while (st->st.resident + need > st->st.limit) {
        dagr_data_t *v = pick_victim(st, true);
        if (!v) v = pick_victim(st, false);
        if (!v || !spill_one(st, v)) {
            st->st.over_limit++;
            char lim[64];
            snprintf(lim, sizeof lim, "%zu", st->st.limit);
            if (!v)
                warn_once(st, &st->warned_over,
                          "the data in use by running tasks exceeds DAGR_MEMORY_LIMIT=%s bytes; "
                          "going over the limit",
                          lim);
            return;
        }
    }
}

/* h->lock held, h has no buffer: gives it one, read back from the file when it was spilled
 * and its contents are wanted, zeroed otherwise. The bytes count from the allocation on;
 * the read runs without the store's lock (h's lock freezes h). */
static dagr_status_t make_resident(store_t *st, dagr_data_t *h, pin_mode_t mode) {
    dagr_ctx_t *ctx = st->ctx;
    bool read = h->spilled && h->slot && mode != PIN_OVERWRITE;
    pthread_mutex_lock(&st->lock);
    make_room(st, h->bytes);
    void *p = data_alloc_zeroed(h->bytes, !read);
    if (!p) {
        pthread_mutex_unlock(&st->lock);
        return DAGR_ERR(DAGR_ERR_NOMEM, "cannot allocate %zu bytes for data #%llu", h->bytes,
                        (unsigned long long)h->id);
    }
    st->st.resident += h->bytes;
    if (st->st.resident > st->st.peak) st->st.peak = st->st.resident;
    if (read) {
        bool inject = ++st->reads_done == st->fail_read_at;
        pthread_mutex_unlock(&st->lock);
        int64_t t0 = trace_io_begin(ctx);
        double r0 = dagr_now();
        bool ok = !inject && node_copy(st, h, p, false);
        int err = inject ? EIO : errno;
        double secs = dagr_now() - r0;
        if (ok) trace_io_end(ctx, t0, TRACE_IO_SPILL_READ, h->bytes, sched_worker_index());
        pthread_mutex_lock(&st->lock);
        st->st.io_seconds += secs;
        if (!ok) {
            st->st.resident -= h->bytes;
            pthread_mutex_unlock(&st->lock);
            data_buf_free(p);
            return DAGR_ERR(DAGR_ERR_IO,
                            "cannot read data #%llu (%zu bytes) back from the spill file in "
                            "%s: %s",
                            (unsigned long long)h->id, h->bytes, st->dir, strerror(err));
        }
        st->st.reads++;
        st->st.read_bytes += h->bytes;
    }
    h->tracked = true;
    lru_append(st, h);
    pthread_mutex_unlock(&st->lock);
    if (!h->spilled) h->buf_kind = BUF_HEAP; /* a first copy on a rank that held none */
    if (h->buf_kind == BUF_HOME) h->home = p;
    h->buf = p;
    h->disk_clean = read;
    h->spilled = false;
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * Pins
 * ---------------------------------------------------------------------------------------- */

dagr_status_t data_pin(dagr_data_t *h, pin_mode_t mode) {
    store_t *st = h->ctx->store;
    /* A handle whose size tasks decide is counted even while empty: its pinner may give it
     * a size, and the unpin must match. */
    if (h->bytes == 0 && !h->dynamic) return DAGR_OK;
    dagr_status_t s = DAGR_OK;
    pthread_mutex_lock(&h->lock);
    if (!h->buf && h->bytes) s = make_resident(st, h, mode);
    if (s == DAGR_OK) {
        h->pins++;
        if (mode != PIN_READ) h->disk_clean = false;
    }
    pthread_mutex_unlock(&h->lock);
    return s;
}

void data_unpin(dagr_data_t *h) {
    store_t *st = h->ctx->store;
    if (h->bytes == 0 && !h->dynamic) return;
    pthread_mutex_lock(&h->lock);
    h->pins--;
    pthread_mutex_unlock(&h->lock);
    /* Just used: to the young end of the list. */
    pthread_mutex_lock(&st->lock);
    if (h->tracked) {
        lru_unlink(st, h);
        lru_append(st, h);
    }
    pthread_mutex_unlock(&st->lock);
}
