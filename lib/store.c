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
 * The file. One per rank, created at dagr_init in the spill directory and unlinked at once
 * (O_TMPFILE where the file system has it), so that a crashed run leaves nothing behind.
 * Each handle gets a slot the first time it is spilled and keeps it until it dies; a buffer
 * read back and not written since is dropped again without a write (disk_clean). Freed slots
 * merge with their free neighbours and are reused first-fit, so the file stays about as
 * large as the spilled data alive at one time, not as large as everything ever spilled; once
 * at most half of it is in use, its end is cut off and the disk space given back.
 *
 * A home never touched yet is not even allocated: it is "spilled" as zeros (slot -1) and
 * allocated zeroed by the first pin, so that creating an array larger than memory costs
 * nothing until its tiles are used.
 *
 * Locks. h->lock guards a handle's buffer state; the store's lock guards the LRU list, the
 * counters and the slots, and is taken after h->lock, never before it. Making room walks the
 * LRU holding the store's lock and only *tries* each candidate's lock, skipping one that is
 * busy, so the two orders never wait on each other. The file I/O itself runs without the
 * store's lock, under the lock of the handle being written or read (which freezes it; a
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
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOT_ALIGN 4096                /* slots start on pages: whole-page I/O */
#define SHRINK_MIN ((uint64_t)1 << 20) /* shrink_file: never for less */

typedef struct free_slot {
    int64_t off;
    uint64_t bytes;
} free_slot_t;

struct store {
    dagr_ctx_t *ctx;
    pthread_mutex_t lock;
    int fd;
    char dir[512];
    dagr_data_t *lru_head, *lru_tail; /* oldest first */
    int64_t file_end;  /* the end of the last slot in use: the file is that long or longer */
    free_slot_t *free; /* free slots before file_end, sorted, none adjacent to another */
    size_t nfree, capfree;
    dagr_memory_stats_t st;
    bool warned_over, warned_write;
    /* Tests only (DAGR_SPILL_TEST_FAIL_READ / _WRITE=k): the k-th read-back / write fails as
     * a disk error (EIO) / a full disk (ENOSPC) would; 0: none. */
    long fail_read_at, fail_write_at;
    long reads_done, writes_done;
};

static uint64_t slot_bytes(size_t bytes) {
    return ((uint64_t)bytes + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
}

/* ------------------------------------------------------------------------------------------
 * Start and stop
 * ---------------------------------------------------------------------------------------- */

static int open_spill_file(const char *dir) {
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return -1;
#endif
    char path[600];
    snprintf(path, sizeof path, "%s/dagr-spill-XXXXXX", dir);
    int fd2 = mkstemp(path);
    if (fd2 >= 0) unlink(path);
    return fd2;
}

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
        } else if ((st->fd = open_spill_file(dir)) < 0) {
            s = DAGR_ERR_IO;
            snprintf(msg, sizeof msg,
                     "rank %d cannot create a spill file in '%s' (DAGR_SPILL_DIR): %s", ctx->rank,
                     dir, strerror(errno));
        }
        if (s == DAGR_OK) {
            st->ctx = ctx;
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
    close(st->fd); /* the file was unlinked at creation: its space goes with it */
    pthread_mutex_destroy(&st->lock);
    free(st->free);
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
    if (!st) return DAGR_OK;
    pthread_mutex_lock(&st->lock);
    *out = st->st;
    pthread_mutex_unlock(&st->lock);
    return DAGR_OK;
}

/* ------------------------------------------------------------------------------------------
 * The LRU list and the file's slots (store lock held)
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

/* First fit in address order, so that the file's start fills up and its end frees up. */
static int64_t slot_alloc(store_t *st, size_t bytes) {
    uint64_t need = slot_bytes(bytes);
    for (size_t i = 0; i < st->nfree; i++) {
        free_slot_t *f = &st->free[i];
        if (f->bytes < need) continue;
        int64_t off = f->off;
        f->off += (int64_t)need;
        f->bytes -= need;
        if (f->bytes == 0) {
            st->nfree--;
            memmove(f, f + 1, (st->nfree - i) * sizeof *f);
        }
        return off;
    }
    int64_t off = st->file_end;
    st->file_end += (int64_t)need;
    return off;
}

/* Gives the file's disk space back once at most half of it is in use (and at least
 * SHRINK_MIN would go): a run that spilled a lot once does not keep that much disk. */
static void shrink_file(store_t *st) {
    uint64_t used = (uint64_t)st->file_end, size = st->st.spill_file_bytes;
    if (used >= size || size - used < SHRINK_MIN || used > size / 2) return;
    if (ftruncate(st->fd, (off_t)used) == 0) st->st.spill_file_bytes = used;
}

/* Back to the free list, which stays sorted and merged: a freed slot joins the free ones
 * next to it, so that slots of different sizes coming and going leave whole holes that
 * larger buffers can use. Free space at the end of the file shortens it. A slot the list
 * cannot hold (out of memory) is simply lost: the file grows, nothing breaks. */
static void slot_release(store_t *st, int64_t off, size_t bytes) {
    uint64_t n = slot_bytes(bytes);
    size_t lo = 0, hi = st->nfree; /* the first free slot after off */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (st->free[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    free_slot_t *prev = lo > 0 ? &st->free[lo - 1] : NULL;
    free_slot_t *next = lo < st->nfree ? &st->free[lo] : NULL;
    bool join_prev = prev && prev->off + (int64_t)prev->bytes == off;
    bool join_next = next && off + (int64_t)n == next->off;
    if (off + (int64_t)n == st->file_end) {
        /* The last slot: the file ends where the free space before it starts. */
        st->file_end = join_prev ? prev->off : off;
        if (join_prev) st->nfree--;
    } else if (join_prev && join_next) {
        prev->bytes += n + next->bytes;
        st->nfree--;
        memmove(next, next + 1, (st->nfree - lo) * sizeof *next);
    } else if (join_prev) {
        prev->bytes += n;
    } else if (join_next) {
        next->off = off;
        next->bytes += n;
    } else {
        if (st->nfree == st->capfree) {
            size_t cap = st->capfree ? 2 * st->capfree : 64;
            free_slot_t *f = realloc(st->free, cap * sizeof *f);
            if (!f) return;
            st->free = f;
            st->capfree = cap;
        }
        memmove(&st->free[lo + 1], &st->free[lo], (st->nfree - lo) * sizeof *st->free);
        st->free[lo] = (free_slot_t){off, n};
        st->nfree++;
    }
    shrink_file(st);
}

void store_forget_locked(dagr_data_t *h) {
    store_t *st = h->ctx->store;
    if (!st) return;
    pthread_mutex_lock(&st->lock);
    untrack(st, h);
    if (h->slot >= 0) {
        slot_release(st, h->slot, h->bytes);
        h->slot = -1;
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
    if (h->slot >= 0) {
        slot_release(st, h->slot, old_bytes);
        h->slot = -1;
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

static bool file_io(int fd, void *p, size_t n, int64_t off, bool write) {
    char *c = p;
    while (n) {
        ssize_t k = write ? pwrite(fd, c, n, (off_t)off) : pread(fd, c, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = write ? ENOSPC : EIO; /* a short file: cut behind our back */
            return false;
        }
        c += k;
        n -= (size_t)k;
        off += k;
    }
    return true;
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
    bool write = !v->disk_clean || v->slot < 0, ok = true;
    if (v->slot < 0) v->slot = slot_alloc(st, v->bytes);
    bool inject = write && ++st->writes_done == st->fail_write_at;
    pthread_mutex_unlock(&st->lock);
    double secs = 0;
    int err = 0;
    if (write) {
        int64_t t0 = trace_io_begin(ctx);
        double w0 = dagr_now();
        ok = !inject && file_io(st->fd, v->buf, v->bytes, v->slot, true);
        err = inject ? ENOSPC : errno;
        secs = dagr_now() - w0;
        if (ok) trace_io_end(ctx, t0, TRACE_IO_SPILL_WRITE, v->bytes, sched_worker_index());
    }
    if (ok) {
        free(v->buf);
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
            uint64_t end = (uint64_t)v->slot + v->bytes;
            if (end > st->st.spill_file_bytes) st->st.spill_file_bytes = end;
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
    bool read = h->spilled && h->slot >= 0 && mode != PIN_OVERWRITE;
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
        bool ok = !inject && file_io(st->fd, p, h->bytes, h->slot, false);
        int err = inject ? EIO : errno;
        double secs = dagr_now() - r0;
        if (ok) trace_io_end(ctx, t0, TRACE_IO_SPILL_READ, h->bytes, sched_worker_index());
        pthread_mutex_lock(&st->lock);
        st->st.io_seconds += secs;
        if (!ok) {
            st->st.resident -= h->bytes;
            pthread_mutex_unlock(&st->lock);
            free(p);
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
