/* Flat-memory scenario: a long loop of tiny tasks must not grow the resident set.
 *
 * Usage: flatmem [NTASKS [MID [rss|heap]]]   (defaults 1000000, 200000, rss)
 *
 * NTASKS tasks over NH small handles owned round-robin by the ranks, inserted without any
 * dagr_wait_all in the loop. Task i updates handle i % NH in place; every 1000th task also
 * reads the next handle, which lives on another rank when there are several. After MID tasks
 * have been inserted and at the end (after dagr_wait_all) the program reads VmRSS and the
 * bytes malloc has handed out (mallinfo2: live heap); the live heap must not grow by 16 MiB or
 * more, nor (with "rss", the default) VmRSS, and the final contents must equal a sequential
 * replay.
 * Why both: VmRSS keeps the peak of the task backlog (glibc keeps freed chunks), and that
 * backlog may be larger at some moment after MID than at MID (up to DAGR_MAX_PENDING tasks, of
 * several hundred bytes each), which is no leak; so the RSS check is only meaningful with a
 * small DAGR_MAX_PENDING, while the live-heap check holds whatever the backlog.
 * Prints RANK r RESULT flatmem ok|FAIL growth_kib=G heap_growth_kib=H ... */
#include "scenario.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NH 4

static dagr_task_result_t k_step(const dagr_task_view_t *t) {
    uint64_t i, x, y = 0;
    memcpy(&i, t->args, 8);
    memcpy(&x, t->buf[0], 8);
    if (t->nbuf > 1) memcpy(&y, t->buf[1], 8);
    x = x * 6364136223846793005ull + i + (y >> 3);
    memcpy(t->buf[0], &x, 8);
    return DAGR_TASK_DONE;
}

/* Bytes currently allocated through malloc (all arenas, mmapped chunks included), in KiB. */
static long heap_kib(void) {
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

static const dagr_kernel_t K_STEP = {.name = "flatmem_step", .cpu = k_step};

int main(int argc, char **argv) {
    long ntasks = argc > 1 ? atol(argv[1]) : 1000000;
    long mid = argc > 2 ? atol(argv[2]) : 200000;
    int check_rss = !(argc > 3 && strcmp(argv[3], "heap") == 0);
    const long limit_kib = 16 * 1024;
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    const int rank = dagr_rank(ctx), size = dagr_size(ctx);
    sc_set_rank(rank);

    dagr_data_t *h[NH];
    uint64_t ref[NH] = {0};
    for (int k = 0; k < NH; k++)
        SC_TRY(dagr_data_create(ctx, 8, k % size, &h[k]));

    double t0 = sc_now(), t_mid = 0;
    long rss_mid = -1, heap_mid = -1;
    for (long i = 0; i < ntasks; i++) {
        if (i == mid) {
            rss_mid = sc_rss_kib();
            heap_mid = heap_kib();
            t_mid = sc_now();
        }
        int k = (int)(i % NH), k2 = (k + 1) % NH;
        int remote = i % 1000 == 999;
        dagr_access_t acc[2] = {{h[k], DAGR_RW}, {h[k2], DAGR_READ}};
        uint64_t arg = (uint64_t)i;
        SC_TRY(dagr_spawn(ctx, &K_STEP, &arg, sizeof arg, remote ? 2 : 1, acc, NULL));
        ref[k] = ref[k] * 6364136223846793005ull + arg + (remote ? ref[k2] >> 3 : 0);
    }
    double t_insert = sc_now() - t0;
    SC_TRY(dagr_wait_all(ctx));
    long rss_end = sc_rss_kib(), heap_end = heap_kib();
    double secs = sc_now() - t0;

    int data_ok = 1;
    for (int k = 0; k < NH; k++) {
        uint64_t v = 0;
        SC_TRY(dagr_fetch(h[k], &v, -1));
        data_ok &= SC_CHECK(v == ref[k], "handle %d holds %llu, want %llu", k,
                            (unsigned long long)v, (unsigned long long)ref[k]);
    }
    long growth = rss_end - rss_mid, heap_growth = heap_end - heap_mid;
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer's allocator keeps glibc's mallinfo2 at zero: only VmRSS tells here. */
    int mem_ok = 1;
#else
    int mem_ok = SC_CHECK(heap_mid > 0 && heap_growth < limit_kib,
                          "live heap grew by %ld KiB between task %ld and the end (limit %ld KiB)",
                          heap_growth, mid, limit_kib);
#endif
    if (check_rss)
        mem_ok &= SC_CHECK(rss_mid > 0 && growth < limit_kib,
                           "VmRSS grew by %ld KiB between task %ld and the end (limit %ld KiB)",
                           growth, mid, limit_kib);
    sc_result("flatmem", data_ok && mem_ok,
              "growth_kib=%ld heap_growth_kib=%ld rss_mid_kib=%ld rss_end_kib=%ld heap_mid_kib=%ld "
              "heap_end_kib=%ld rss_checked=%d tasks=%ld size=%d threads=%d insert_s=%.2f "
              "total_s=%.2f after_mid_s=%.2f",
              growth, heap_growth, rss_mid, rss_end, heap_mid, heap_end, check_rss, ntasks, size,
              dagr_threads(ctx), t_insert, secs, sc_now() - t_mid);
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    return sc_exit_code();
}
