/* The spill file: the memory node below host memory. The out-of-core store (store.c) evicts
 * host buffers to it and reads them back through the same small interface a device's memory
 * node offers (mem_ops_t: allocate, free, copy in and out), so that the store is a case of the
 * memory-node mechanism, not a path of its own: only its policy (what to evict, when) is
 * store.c's.
 *
 * Memory. An allocation is a slot of the file (a spill_slot_t: offset and size, the node's
 * "address"). Slots start on pages (whole-page I/O). Freed slots merge with their free
 * neighbours and are reused first-fit in address order, so the file stays about as large as
 * the spilled data alive at one time, not as large as everything ever spilled; once at most
 * half of it is in use, its end is cut off and the disk space given back. A slot the free list
 * cannot hold (out of memory) is simply lost: the file grows, nothing breaks.
 *
 * Copies are pwrite/pread on the calling thread, complete when copy returns: threads spilling
 * and reading back different buffers do their I/O at once (a disk with a queue wants several
 * requests in flight). A copy that fails returns false with errno set (EIO, ENOSPC).
 *
 * The file is created in the spill directory and unlinked at once (O_TMPFILE where the file
 * system has it), so that a crashed run leaves nothing behind; closing it gives its space
 * back. */
#include "lib_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOT_ALIGN 4096                /* slots start on pages: whole-page I/O */
#define SHRINK_MIN ((uint64_t)1 << 20) /* shrink: never for less */

typedef struct free_slot {
    int64_t off;
    uint64_t bytes;
} free_slot_t;

struct spill_slot {
    int64_t off;
    size_t bytes;
};

typedef struct spill {
    int fd;
    pthread_mutex_t lock; /* the slots and the file's size (a leaf: nothing is taken under it) */
    int64_t file_end;     /* the end of the last slot in use: the file is that long or longer */
    uint64_t file_bytes;  /* how long the file is */
    free_slot_t *free;    /* free slots before file_end, sorted, none adjacent to another */
    size_t nfree, capfree;
    double busy; /* seconds of I/O */
} spill_t;

static uint64_t slot_bytes(size_t bytes) {
    return ((uint64_t)bytes + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
}

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

void *spill_start(const char *dir) {
    spill_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if ((s->fd = open_spill_file(dir)) < 0) {
        int e = errno;
        free(s);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

uint64_t spill_file_bytes(void *impl) {
    spill_t *s = impl;
    pthread_mutex_lock(&s->lock);
    uint64_t b = s->file_bytes;
    pthread_mutex_unlock(&s->lock);
    return b;
}

/* ------------------------------------------------------------------------------------------
 * Slots (lock held)
 * ---------------------------------------------------------------------------------------- */

/* First fit in address order, so that the file's start fills up and its end frees up. */
static int64_t slot_alloc(spill_t *s, size_t bytes) {
    uint64_t need = slot_bytes(bytes);
    for (size_t i = 0; i < s->nfree; i++) {
        free_slot_t *f = &s->free[i];
        if (f->bytes < need) continue;
        int64_t off = f->off;
        f->off += (int64_t)need;
        f->bytes -= need;
        if (f->bytes == 0) {
            s->nfree--;
            memmove(f, f + 1, (s->nfree - i) * sizeof *f);
        }
        return off;
    }
    int64_t off = s->file_end;
    s->file_end += (int64_t)need;
    return off;
}

/* Gives the file's disk space back once at most half of it is in use (and at least
 * SHRINK_MIN would go): a run that spilled a lot once does not keep that much disk. */
static void shrink_file(spill_t *s) {
    uint64_t used = (uint64_t)s->file_end, size = s->file_bytes;
    if (used >= size || size - used < SHRINK_MIN || used > size / 2) return;
    if (ftruncate(s->fd, (off_t)used) == 0) s->file_bytes = used;
}

/* Back to the free list, which stays sorted and merged: a freed slot joins the free ones
 * next to it, so that slots of different sizes coming and going leave whole holes that larger
 * buffers can use. Free space at the end of the file shortens it. */
static void slot_release(spill_t *s, int64_t off, size_t bytes) {
    uint64_t n = slot_bytes(bytes);
    size_t lo = 0, hi = s->nfree; /* the first free slot after off */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->free[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    free_slot_t *prev = lo > 0 ? &s->free[lo - 1] : NULL;
    free_slot_t *next = lo < s->nfree ? &s->free[lo] : NULL;
    bool join_prev = prev && prev->off + (int64_t)prev->bytes == off;
    bool join_next = next && off + (int64_t)n == next->off;
    if (off + (int64_t)n == s->file_end) {
        /* The last slot: the file ends where the free space before it starts. */
        s->file_end = join_prev ? prev->off : off;
        if (join_prev) s->nfree--;
    } else if (join_prev && join_next) {
        prev->bytes += n + next->bytes;
        s->nfree--;
        memmove(next, next + 1, (s->nfree - lo) * sizeof *next);
    } else if (join_prev) {
        prev->bytes += n;
    } else if (join_next) {
        next->off = off;
        next->bytes += n;
    } else {
        if (s->nfree == s->capfree) {
            size_t cap = s->capfree ? 2 * s->capfree : 64;
            free_slot_t *f = realloc(s->free, cap * sizeof *f);
            if (!f) return;
            s->free = f;
            s->capfree = cap;
        }
        memmove(&s->free[lo + 1], &s->free[lo], (s->nfree - lo) * sizeof *s->free);
        s->free[lo] = (free_slot_t){off, n};
        s->nfree++;
    }
    shrink_file(s);
}

/* ------------------------------------------------------------------------------------------
 * The node's operations
 * ---------------------------------------------------------------------------------------- */

static void *sp_alloc(void *impl, size_t bytes) {
    spill_t *s = impl;
    spill_slot_t *slot = malloc(sizeof *slot);
    if (!slot) return NULL;
    pthread_mutex_lock(&s->lock);
    slot->off = slot_alloc(s, bytes);
    slot->bytes = bytes;
    pthread_mutex_unlock(&s->lock);
    return slot;
}

static void sp_free(void *impl, void *p, size_t bytes) {
    spill_t *s = impl;
    spill_slot_t *slot = p;
    (void)bytes; /* the slot knows its size */
    pthread_mutex_lock(&s->lock);
    slot_release(s, slot->off, slot->bytes);
    pthread_mutex_unlock(&s->lock);
    free(slot);
}

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

/* A contiguous copy (host buffers are packed here) at the slot's start. */
static bool sp_copy(void *impl, const mem_copy_t *c, atomic_bool *done) {
    spill_t *s = impl;
    const spill_slot_t *slot = c->to_node ? c->dst : c->src;
    size_t n = c->width * c->height;
    double t0 = dagr_now();
    bool ok = n <= slot->bytes &&
              file_io(s->fd, c->to_node ? (void *)c->src : c->dst, n, slot->off, c->to_node);
    if (n > slot->bytes) errno = EINVAL;
    int e = errno;
    double secs = dagr_now() - t0;
    pthread_mutex_lock(&s->lock);
    s->busy += secs;
    uint64_t end = (uint64_t)slot->off + n;
    if (ok && c->to_node && end > s->file_bytes) s->file_bytes = end;
    pthread_mutex_unlock(&s->lock);
    atomic_store_explicit(done, true, memory_order_release);
    errno = e;
    return ok;
}

static double sp_busy(void *impl) {
    spill_t *s = impl;
    pthread_mutex_lock(&s->lock);
    double b = s->busy;
    pthread_mutex_unlock(&s->lock);
    return b;
}

static void sp_stop(void *impl) {
    spill_t *s = impl;
    close(s->fd); /* unlinked at creation: its space goes with it */
    pthread_mutex_destroy(&s->lock);
    free(s->free);
    free(s);
}

const mem_ops_t spill_ops = {
    .kind = "spill file",
    .alloc = sp_alloc,
    .free = sp_free,
    .copy = sp_copy,
    .busy = sp_busy,
    .stop = sp_stop,
};
