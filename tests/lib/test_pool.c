/* The data pool (lib/pool.c), on its own: blocks keep their bytes and never overlap, pages no
 * block uses go back to the system (checked with mincore, not only with the pool's counts)
 * beyond what it keeps, and a shuffle's pattern (many small buckets freed by destination
 * while big outputs are made) holds little more than the bytes in use, where keeping every
 * freed page holds buckets and outputs both. Blocks of 256 KiB and more start on a 4 KiB
 * boundary. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib_impl.h"

#define MB ((size_t)1 << 20)

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill(void *p, size_t n, uint64_t tag) {
    uint64_t *w = p;
    for (size_t i = 0; i < n / 8; i++)
        w[i] = tag * 0x9e3779b97f4a7c15ull + i;
}

static bool holds(const void *p, size_t n, uint64_t tag) {
    const uint64_t *w = p;
    for (size_t i = 0; i < n / 8; i++)
        if (w[i] != tag * 0x9e3779b97f4a7c15ull + i) return false;
    return true;
}

/* Pages of [p, p + n) in memory, by mincore. */
static size_t resident_bytes(const void *p, size_t n) {
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(pg - 1), e = (uintptr_t)p + n;
    size_t npages = (e - a + (size_t)pg - 1) / (size_t)pg;
    unsigned char *v = malloc(npages);
    cr_assert(v);
    cr_assert_eq(mincore((void *)a, e - a, v), 0);
    size_t r = 0;
    for (size_t i = 0; i < npages; i++)
        r += v[i] & 1;
    free(v);
    return r * (size_t)pg;
}

static pool_stats_t stats(void) {
    pool_stats_t s;
    pool_stats(&s);
    return s;
}

Test(lib_pool, blocks_hold_their_bytes_and_never_overlap) {
    pool_configure(true, 16 * MB);
    enum { N = 200 };
    void *p[N] = {0};
    size_t n[N];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            if (p[i] && next_rand() % 2) { /* free about half, then refill the gaps */
                cr_assert(holds(p[i], n[i], (uint64_t)i));
                pool_free(p[i]);
                p[i] = NULL;
            }
            if (!p[i]) {
                n[i] = POOL_MIN + (size_t)(next_rand() % (6 * MB)) / 8 * 8;
                p[i] = pool_alloc(n[i]);
                cr_assert_not_null(p[i], "block %d of %zu bytes", i, n[i]);
                cr_assert_eq((uintptr_t)p[i] % 64, 0, "block %d not 64-byte aligned", i);
                /* From 256 KiB on, on a 4 KiB boundary (a checkpoint's direct writes). */
                if (n[i] >= ((size_t)256 << 10))
                    cr_assert_eq((uintptr_t)p[i] % 4096, 0, "block %d of %zu bytes at %p", i, n[i],
                                 p[i]);
                cr_assert(pool_owns(p[i]));
                fill(p[i], n[i], (uint64_t)i);
            }
        }
        for (int i = 0; i < N; i++) {
            cr_assert(holds(p[i], n[i], (uint64_t)i), "block %d lost its bytes", i);
            for (int j = 0; j < N; j++) {
                const char *a = p[i], *b = p[j];
                cr_assert(i == j || a + n[i] <= b || b + n[j] <= a, "blocks %d and %d overlap", i,
                          j);
            }
        }
    }
    size_t total = 0;
    for (int i = 0; i < N; i++)
        total += n[i];
    pool_stats_t s = stats();
    cr_assert_geq(s.in_use, total);
    /* Each block's header and rounding, and the alignment's pad of the big ones. */
    cr_assert_leq(s.in_use, total + N * (128 + 4032), "in use %zu for %zu bytes", s.in_use, total);
    for (int i = 0; i < N; i++)
        pool_free(p[i]);
    cr_assert_eq(stats().in_use, 0);
    int x;
    cr_assert(!pool_owns(&x));
}

Test(lib_pool, unused_pages_go_back) {
    pool_configure(true, 0); /* keep nothing */
    enum { N = 64 };
    void *p[N];
    size_t n = 1200 * 1024;
    for (int i = 0; i < N; i++) {
        cr_assert_not_null(p[i] = pool_alloc(n));
        memset(p[i], 1, n);
    }
    size_t touched = 0;
    for (int i = 0; i < N; i++)
        touched += resident_bytes(p[i], n);
    cr_assert_geq(touched, (size_t)N * n - N * 4096, "only %zu bytes in memory", touched);
    pool_stats_t s = stats();
    cr_assert_geq(s.resident, (size_t)N * n);
    /* Every other block first: their pages are shared with live neighbours, most stay. */
    for (int i = 0; i < N; i += 2)
        pool_free(p[i]);
    for (int i = 1; i < N; i += 2)
        cr_assert(((unsigned char *)p[i])[0] == 1 && ((unsigned char *)p[i])[n - 1] == 1,
                  "block %d lost its bytes when its neighbours went", i);
    for (int i = 1; i < N; i += 2)
        pool_free(p[i]);
    s = stats();
    cr_assert_eq(s.in_use, 0);
    cr_assert_eq(s.resident, 0, "%zu bytes of pages kept with nothing in use", s.resident);
    size_t left = 0;
    for (int i = 0; i < N; i++)
        left += resident_bytes(p[i], n);
    cr_assert_eq(left, 0, "%zu bytes still in memory after every block was freed", left);
    cr_assert_geq(s.given_back, (size_t)N * n);
}

Test(lib_pool, keeps_what_it_is_told) {
    size_t keep = 24 * MB;
    pool_configure(true, keep);
    enum { N = 40 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        cr_assert_not_null(p[i] = pool_alloc(2 * MB - 64)); /* a page each, with the header */
        memset(p[i], 2, 2 * MB - 64);
    }
    for (int i = 0; i < N; i++)
        pool_free(p[i]);
    pool_stats_t s = stats();
    cr_assert_eq(s.in_use, 0);
    cr_assert_leq(s.resident, keep + 2 * MB, "kept %zu bytes, asked for %zu", s.resident, keep);
    cr_assert_geq(s.resident, keep - 2 * MB, "kept only %zu bytes of %zu", s.resident, keep);
    /* What it kept is reused: the same blocks again need no new page. */
    size_t before = s.given_back;
    for (int i = 0; i < 10; i++)
        cr_assert_not_null(p[i] = pool_alloc(2 * MB - 64));
    cr_assert_eq(stats().given_back, before);
    for (int i = 0; i < 10; i++)
        pool_free(p[i]);
}

/* What pool_hold adds is kept on top of keep, until it is lifted (an asynchronous
 * checkpoint's staged copies, between checkpoints). */
Test(lib_pool, holds_what_it_is_told_on_top) {
    size_t keep = 8 * MB, hold = 32 * MB;
    pool_configure(true, keep);
    pool_hold(hold);
    enum { N = 30 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        cr_assert_not_null(p[i] = pool_alloc(2 * MB - 64));
        memset(p[i], 3, 2 * MB - 64);
    }
    for (int i = 0; i < N; i++)
        pool_free(p[i]);
    pool_stats_t s = stats();
    cr_assert_leq(s.resident, keep + hold + 2 * MB, "kept %zu bytes", s.resident);
    cr_assert_geq(s.resident, keep + hold - 2 * MB, "kept only %zu bytes of %zu + %zu", s.resident,
                  keep, hold);
    /* Lifted: the next frees give back down to keep. */
    pool_hold(0);
    for (int i = 0; i < N; i++)
        cr_assert_not_null(p[i] = pool_alloc(2 * MB - 64));
    for (int i = 0; i < N; i++)
        pool_free(p[i]);
    s = stats();
    cr_assert_leq(s.resident, keep + 2 * MB, "kept %zu bytes after the hold ended", s.resident);
}

/* A shuffle: S sources each write D buckets, then each destination in turn gathers its
 * buckets into one output and frees them. Returns the most bytes of resident pages seen. */
static size_t shuffle(size_t keep, size_t *peak_in_use) {
    enum { S = 22, D = 22 };
    pool_configure(true, keep);
    static void *bucket[S][D];
    static size_t bytes[S][D];
    void *out[D];
    size_t peak = 0, in_use = 0;
    for (int s = 0; s < S; s++)
        for (int d = 0; d < D; d++) {
            bytes[s][d] = 300 * 1024 + (size_t)(next_rand() % 64) * 1024;
            cr_assert_not_null(bucket[s][d] = pool_alloc(bytes[s][d]));
            memset(bucket[s][d], s + d, bytes[s][d]);
        }
    for (int d = 0; d < D; d++) {
        size_t n = 0;
        for (int s = 0; s < S; s++)
            n += bytes[s][d];
        cr_assert_not_null(out[d] = pool_alloc(n));
        size_t at = 0;
        for (int s = 0; s < S; s++) {
            memcpy((char *)out[d] + at, bucket[s][d], bytes[s][d]);
            at += bytes[s][d];
        }
        pool_stats_t st = stats();
        if (st.resident > peak) peak = st.resident;
        if (st.in_use > in_use) in_use = st.in_use;
        for (int s = 0; s < S; s++)
            pool_free(bucket[s][d]);
    }
    for (int d = 0; d < D; d++)
        pool_free(out[d]);
    *peak_in_use = in_use;
    return peak;
}

Test(lib_pool, a_shuffle_holds_about_what_it_uses) {
    size_t in_use_keep_all, in_use;
    size_t given = shuffle(0, &in_use); /* first: a new keep applies from the next free on */
    size_t keep_all = shuffle(SIZE_MAX, &in_use_keep_all);
    /* Keeping every freed page: the outputs never fit the buckets' holes, so the pages of
     * both are held (~145 MB each side here). */
    cr_assert_geq(keep_all, in_use_keep_all + 100 * MB, "kept all: %zu MB for %zu in use",
                  keep_all / MB, in_use_keep_all / MB);
    /* Giving pages back: pages still shared by a live bucket, no more. */
    cr_assert_leq(given, in_use + 48 * MB, "%zu MB resident for %zu MB in use", given / MB,
                  in_use / MB);
}

Test(lib_pool, a_block_bigger_than_a_chunk) {
    pool_configure(true, 0);
    size_t n = ((size_t)5 << 30) + 12345; /* address space only: touched at its ends */
    char *p = pool_alloc(n);
    cr_assert_not_null(p);
    p[0] = 1;
    p[n - 1] = 2;
    cr_assert_eq(p[0] + p[n - 1], 3);
    pool_free(p);
    cr_assert_eq(stats().in_use, 0);
}

Test(lib_pool, off_gives_nothing) {
    pool_configure(false, 0);
    cr_assert_null(pool_alloc(MB));
    pool_configure(true, 0);
    void *p = pool_alloc(MB);
    cr_assert_not_null(p);
    pool_configure(false, 0); /* blocks made before stay valid */
    cr_assert(pool_owns(p));
    pool_free(p);
}

Test(lib_pool, a_second_free_stops_the_process, .signal = SIGABRT) {
    pool_configure(true, 0);
    void *p = pool_alloc(MB);
    pool_free(p);
    pool_free(p);
}
