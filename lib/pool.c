/* The data pool: where data buffers of POOL_MIN bytes and more live (data_alloc_zeroed).
 *
 * Why not malloc: glibc reuses a freed block's memory only for a block that fits in it. A
 * table sort's shuffle buckets (about 1 MB each, 300 MB a rank) left holes that its 28 MB
 * output partitions could not use, so the heap grew by the whole output while the buckets'
 * memory sat free: a 10M-row sort at 2 ranks peaked at 3.5x the table for 2.2x of data in
 * use. Handing such memory back page by page (madvise) costs a 4 KB page fault at every
 * reuse, 10-40 us each in a virtual machine (2.6 s per GB), which made that sort 3x slower.
 *
 * Here big buffers come from chunks of address space aligned to 2 MB that ask for transparent
 * huge pages. Every 2 MB page counts the bytes blocks use in it; when a free leaves a page
 * unused and the pool holds more than DAGR_POOL_KEEP bytes of free memory in resident pages,
 * the page goes back to the system (MADV_DONTNEED). A later block there faults it in again
 * as one huge page (about 0.06 s per GB here). So the memory a workload holds is what its
 * buffers use, plus what the pool keeps for reuse without faults, plus pages that blocks
 * still share.
 *
 * Within a chunk, blocks are placed first-fit by address (arena.c's allocator, with a 64-byte
 * header in front of each block): low addresses are reused first, and freed neighbours
 * coalesce. Blocks of DATA_BUF_PAGE_MIN bytes and more start on a 4 KiB boundary (the header
 * just before, the pad in front of it): a tile of a 4 KiB multiple then fills whole pages, so
 * that an asynchronous checkpoint can write it to its file with O_DIRECT straight from where
 * it lives (io/checkpoint_async.c); the pad costs at most 1.6 % of such a block.
 * Process-wide, like malloc; one lock. DAGR_POOL=0 turns it off (malloc then). */
#include "lib_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define PG ((size_t)2 << 20)          /* a transparent huge page */
#define HDR ((size_t)64)              /* a block's header; keeps blocks 64-byte aligned */
#define PAGE ((size_t)4096)           /* where big blocks start (DATA_BUF_PAGE_MIN) */
#define CHUNK_BYTES ((size_t)4 << 30) /* address space a chunk reserves (not memory) */
#define MAX_CHUNKS 256
#define POOL_MAGIC 0x4c4f4f5052474144ull /* "DAGRPOOL" */

typedef struct chunk {
    char *base;
    size_t size; /* a multiple of PG */
    arena_t a;
    uint32_t *used;    /* per page: bytes of blocks (headers included) in it */
    uint8_t *resident; /* per page: touched since it was last given back */
} chunk_t;

typedef struct hdr {
    uint64_t magic;
    uint64_t bytes; /* the block's, pad and header included, as arena_alloc got it */
    chunk_t *chunk;
    char *start; /* the block's, as arena_alloc gave it: the pad, then the header */
} hdr_t;

static struct {
    pthread_mutex_t lock;
    chunk_t chunks[MAX_CHUNKS];
    _Atomic int nchunks; /* chunks[0, nchunks) are set up, and stay */
    atomic_bool off;
    _Atomic size_t keep;
    _Atomic size_t hold; /* kept on top of keep (pool_hold) */
    pool_stats_t st;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .keep = (size_t)64 << 20};

void pool_configure(bool on, size_t keep) {
    atomic_store(&P.off, !on);
    atomic_store(&P.keep, keep);
    atomic_store(&P.hold, 0);
}

void pool_hold(size_t bytes) {
    atomic_store(&P.hold, bytes);
}

bool pool_owns(const void *p) {
    const char *c = p;
    int n = atomic_load_explicit(&P.nchunks, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (c >= P.chunks[i].base && c < P.chunks[i].base + P.chunks[i].size) return true;
    return false;
}

/* A new chunk of at least need bytes (P.lock held); NULL when the system gives no more
 * address space or MAX_CHUNKS are in use. */
static chunk_t *chunk_new(size_t need) {
    int n = atomic_load(&P.nchunks);
    if (n == MAX_CHUNKS) return NULL;
    size_t size = need > CHUNK_BYTES ? (need + PG - 1) / PG * PG : CHUNK_BYTES;
    /* Aligned to a page of PG: map PG more and cut the ends off. */
    char *raw = mmap(NULL, size + PG, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *base = (char *)(((uintptr_t)raw + PG - 1) & ~(uintptr_t)(PG - 1));
    if (base > raw) munmap(raw, (size_t)(base - raw));
    if (raw + size + PG > base + size)
        munmap(base + size, (size_t)(raw + size + PG - (base + size)));
    (void)madvise(base, size, MADV_HUGEPAGE); /* a hint: without it, 4 KB pages */
    chunk_t *c = &P.chunks[n];
    *c = (chunk_t){.base = base, .size = size};
    c->used = calloc(size / PG, sizeof *c->used);
    c->resident = calloc(size / PG, 1);
    if (!c->used || !c->resident || arena_init(&c->a, base, size) != DAGR_OK) {
        free(c->used);
        free(c->resident);
        munmap(base, size);
        return NULL;
    }
    atomic_store_explicit(&P.nchunks, n + 1, memory_order_release);
    return c;
}

/* Counts [s, e) of c (offsets) as used (alloc) or freed; a freed page nobody uses goes back
 * to the system while more than keep bytes are free in resident pages. P.lock held. */
static void account(chunk_t *c, size_t s, size_t e, bool alloc) {
    size_t keep = atomic_load_explicit(&P.keep, memory_order_relaxed) +
                  atomic_load_explicit(&P.hold, memory_order_relaxed);
    size_t run = 0, nrun = 0; /* pages to give back, [run, run + nrun) */
    for (size_t pg = s / PG; pg * PG < e; pg++) {
        size_t lo = s > pg * PG ? s : pg * PG, hi = e < (pg + 1) * PG ? e : (pg + 1) * PG;
        uint32_t n = (uint32_t)(hi - lo);
        if (alloc) {
            if (!c->resident[pg]) { /* the block's first touch faults it in */
                c->resident[pg] = 1;
                P.st.resident += PG;
                P.st.free_resident += PG;
            }
            c->used[pg] += n;
            P.st.free_resident -= n;
            continue;
        }
        c->used[pg] -= n;
        P.st.free_resident += n;
        if (c->used[pg] || P.st.free_resident <= keep) continue;
        c->resident[pg] = 0;
        P.st.resident -= PG;
        P.st.free_resident -= PG;
        P.st.given_back += PG;
        if (nrun && run + nrun == pg) {
            nrun++;
            continue;
        }
        if (nrun) (void)madvise(c->base + run * PG, nrun * PG, MADV_DONTNEED);
        run = pg;
        nrun = 1;
    }
    if (nrun) (void)madvise(c->base + run * PG, nrun * PG, MADV_DONTNEED);
}

void *pool_alloc(size_t bytes) {
    if (atomic_load_explicit(&P.off, memory_order_relaxed)) return NULL;
    size_t pad = bytes >= DATA_BUF_PAGE_MIN ? PAGE - HDR : 0; /* arena blocks are 64-aligned */
    size_t need = HDR + pad + ((bytes + 63) & ~(size_t)63);
    if (need < bytes) return NULL; /* overflow */
    pthread_mutex_lock(&P.lock);
    char *b = NULL;
    chunk_t *c = NULL;
    int n = atomic_load(&P.nchunks);
    for (int i = 0; i < n && !b; i++)
        if ((b = arena_alloc(&P.chunks[i].a, need))) c = &P.chunks[i];
    if (!b && (c = chunk_new(need))) b = arena_alloc(&c->a, need);
    if (b) {
        size_t off = (size_t)(b - c->base);
        account(c, off, off + need, true);
        P.st.in_use += need;
        if (P.st.resident > P.st.peak_resident) P.st.peak_resident = P.st.resident;
    }
    pthread_mutex_unlock(&P.lock);
    if (!b) return NULL;
    char *user = b + HDR;
    if (pad) user = (char *)(((uintptr_t)user + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    UNPOISON(b, need);
    *(hdr_t *)(user - HDR) = (hdr_t){POOL_MAGIC, need, c, b};
    POISON(b, (size_t)(user - b));
    return user;
}

void pool_free(void *p) {
    char *u = (char *)p - HDR;
    UNPOISON(u, HDR);
    hdr_t h = *(hdr_t *)u;
    if (h.magic != POOL_MAGIC) {
        /* Not a block of ours, or freed twice: a bug in the caller; better stop loudly. */
        fprintf(stderr, "dagr: pool_free(%p): not a live pool block\n", p);
        abort();
    }
    ((hdr_t *)u)->magic = 0;
    POISON(h.start, h.bytes);
    pthread_mutex_lock(&P.lock);
    chunk_t *c = h.chunk;
    size_t off = (size_t)(h.start - c->base);
    arena_free(&c->a, h.start, h.bytes);
    account(c, off, off + h.bytes, false);
    P.st.in_use -= h.bytes;
    pthread_mutex_unlock(&P.lock);
}

size_t pool_block_bytes(const void *p) {
    const char *u = (const char *)p - HDR;
    UNPOISON(u, HDR);
    const hdr_t *h = (const hdr_t *)u;
    size_t n = h->bytes - (size_t)((const char *)p - h->start);
    POISON(u, HDR);
    return n;
}

void pool_stats(pool_stats_t *out) {
    pthread_mutex_lock(&P.lock);
    *out = P.st;
    pthread_mutex_unlock(&P.lock);
}
