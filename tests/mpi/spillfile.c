/* The spill file over a long run, and what a write-only access costs out of core. Run under a
 * memory limit (DAGR_MEMORY_LIMIT in the environment).
 *
 * Usage: spillfile churn CYCLES | spillfile overwrite
 *
 * churn: one small handle lives through the whole run (it takes the file's first slot);
 * every cycle creates handles of sizes that change from cycle to cycle (a few large ones,
 * then many small ones, owners spread over the ranks), fills them (WRITE on the owner),
 * updates them on another rank (RW), reads them on a third, checks every byte on every rank
 * with dagr_fetch and destroys them. The file must not grow from cycle to cycle: each rank
 * prints file_max, the largest spill_file_bytes it saw at the end of a cycle (before the
 * cycle's handles go), and cycle_max, the
 * largest number of bytes one cycle's handles take in slots (all ranks' handles: a bound on
 * what one rank can have spilled at once). Last, every rank fills 4 MiB of handles of its
 * own, reads them all (file_full: the file's size then) and destroys everything: the file
 * must have given its space back (file_end, below the 1 MiB under which it is not cut).
 *
 * overwrite (1 rank, limit 1.5 MiB): two 1 MiB handles, so that each use of one spills the
 * other. Handle A is filled, spilled, then overwritten by a DAGR_WRITE task: its old contents
 * must not be read back (reads stays 0); a DAGR_RW task on the spilled B must read it back
 * (reads = 1). Both are then checked with dagr_fetch.
 *
 * Prints RANK r RESULT spillfile ok|FAIL ... */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT 4096
#define MAXH 16

static unsigned char pattern(uint32_t tag, size_t j) {
    return (unsigned char)sc_mix(((uint64_t)tag << 32) ^ (j / 8)) ^ (unsigned char)j;
}

typedef struct fill_args {
    uint32_t tag;  /* what the buffer holds after the task */
    uint32_t from; /* RW: what it must hold before (0: WRITE, nothing expected) */
} fill_args_t;

/* Fills the buffer with pattern(tag); with `from`, first checks it held pattern(from). */
static dagr_task_result_t k_fill(const dagr_task_view_t *t) {
    fill_args_t a;
    memcpy(&a, t->args, sizeof a);
    unsigned char *p = t->buf[0];
    size_t bad = 0;
    for (size_t j = 0; j < t->bytes[0]; j++) {
        if (a.from) bad += p[j] != pattern(a.from, j);
        p[j] = pattern(a.tag, j);
    }
    if (bad) {
        dagr_task_fail(t, DAGR_ERR_NUMERICAL, "%zu of %zu bytes were not pattern %u", bad,
                       t->bytes[0], a.from);
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}

/* READ: the buffer must hold pattern(tag). */
static dagr_task_result_t k_check(const dagr_task_view_t *t) {
    fill_args_t a;
    memcpy(&a, t->args, sizeof a);
    const unsigned char *p = t->buf[0];
    size_t bad = 0;
    for (size_t j = 0; j < t->bytes[0]; j++)
        bad += p[j] != pattern(a.tag, j);
    if (bad) {
        dagr_task_fail(t, DAGR_ERR_NUMERICAL, "read %zu wrong bytes of pattern %u", bad, a.tag);
        return DAGR_TASK_ERROR;
    }
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_FILL = {.name = "spill_fill", .cpu = k_fill};
static const dagr_kernel_t K_CHECK = {.name = "spill_check", .cpu = k_check};

static void spawn_on(dagr_ctx_t *ctx, const dagr_kernel_t *k, fill_args_t a, dagr_data_t *h,
                     dagr_mode_t mode, int rank) {
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = rank;
    SC_TRY(dagr_spawn(ctx, k, &a, sizeof a, 1, &(dagr_access_t){h, mode}, &o));
}

/* Every rank fetches h and compares it with pattern(tag). */
static int fetch_ok(dagr_data_t *h, size_t bytes, uint32_t tag, const char *what) {
    unsigned char *dst = malloc(bytes);
    if (!SC_CHECK(dst != NULL, "out of memory")) return 0;
    int ok = SC_EXPECT_STATUS(dagr_fetch(h, dst, -1), DAGR_OK);
    size_t bad = 0;
    for (size_t j = 0; j < bytes && ok; j++)
        bad += dst[j] != pattern(tag, j);
    free(dst);
    return ok & SC_CHECK(bad == 0, "%s: %zu of %zu bytes differ", what, bad, bytes);
}

static uint64_t file_bytes(dagr_ctx_t *ctx) {
    dagr_memory_stats_t m;
    SC_TRY(dagr_memory_stats(ctx, &m));
    return m.spill_file_bytes;
}

/* Cycle c's handle sizes: even cycles a few large handles, odd cycles many small ones, every
 * size different (odd byte counts too), so that the holes one cycle leaves never match the
 * next cycle's slots one for one. */
static int cycle_sizes(int c, sc_rng_t *rng, size_t *sizes) {
    int n = c % 2 ? 8 + sc_below(rng, MAXH - 8) : 3 + sc_below(rng, 4);
    for (int k = 0; k < n; k++)
        sizes[k] = c % 2 ? (size_t)(20000 + sc_below(rng, 130000))
                         : (size_t)(150000 + sc_below(rng, 350000));
    return n;
}

static int churn(dagr_ctx_t *ctx, int cycles) {
    const int rank = dagr_rank(ctx), size = dagr_size(ctx);
    sc_rng_t rng = {42};
    int ok = 1;
    dagr_data_t *keep = NULL;
    SC_TRY(dagr_data_create(ctx, 10000, 0, &keep));
    spawn_on(ctx, &K_FILL, (fill_args_t){7, 0}, keep, DAGR_WRITE, 0);
    uint64_t file_max = 0, cycle_max = 0;
    for (int c = 0; c < cycles && ok; c++) {
        size_t sizes[MAXH];
        dagr_data_t *h[MAXH];
        int n = cycle_sizes(c, &rng, sizes);
        uint64_t slots = 0;
        for (int k = 0; k < n; k++) {
            int owner = (c + k) % size;
            uint32_t tag = (uint32_t)(c * 64 + k + 1);
            SC_TRY(dagr_data_create(ctx, sizes[k], owner, &h[k]));
            spawn_on(ctx, &K_FILL, (fill_args_t){tag, 0}, h[k], DAGR_WRITE, owner);
            spawn_on(ctx, &K_FILL, (fill_args_t){tag + 100000, tag}, h[k], DAGR_RW,
                     (owner + 1) % size);
            spawn_on(ctx, &K_CHECK, (fill_args_t){tag + 100000, 0}, h[k], DAGR_READ,
                     (owner + 2) % size);
            slots += (sizes[k] + SLOT - 1) / SLOT * SLOT;
        }
        /* The long-lived handle is used now and then, so that it is spilled and read back. */
        if (c % 3 == 0) spawn_on(ctx, &K_CHECK, (fill_args_t){7, 0}, keep, DAGR_READ, c % size);
        ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
        for (int k = 0; k < n && ok; k++) {
            char what[64];
            snprintf(what, sizeof what, "cycle %d handle %d", c, k);
            ok &= fetch_ok(h[k], sizes[k], (uint32_t)(c * 64 + k + 1) + 100000, what);
        }
        uint64_t f = file_bytes(ctx); /* with the cycle's handles alive */
        if (f > file_max) file_max = f;
        for (int k = 0; k < n; k++)
            SC_TRY(dagr_data_destroy(&h[k]));
        if (slots > cycle_max) cycle_max = slots;
    }
    ok &= fetch_ok(keep, 10000, 7, "the long-lived handle");
    /* Last, 4 MiB on every rank at once, so that every file is well over 1 MiB; then
     * everything goes. */
    dagr_data_t *last[8 * MAXH];
    const int nlast = 8 * size;
    for (int k = 0; k < nlast; k++) {
        SC_TRY(dagr_data_create(ctx, (size_t)1 << 19, k % size, &last[k]));
        spawn_on(ctx, &K_FILL, (fill_args_t){(uint32_t)(9000 + k), 0}, last[k], DAGR_WRITE,
                 k % size);
    }
    for (int k = 0; k < nlast; k++)
        spawn_on(ctx, &K_CHECK, (fill_args_t){(uint32_t)(9000 + k), 0}, last[k], DAGR_READ,
                 k % size);
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    uint64_t file_full = file_bytes(ctx);
    for (int k = 0; k < nlast; k++)
        SC_TRY(dagr_data_destroy(&last[k]));
    SC_TRY(dagr_data_destroy(&keep));
    SC_TRY(dagr_wait_all(ctx));
    dagr_memory_stats_t m;
    SC_TRY(dagr_memory_stats(ctx, &m));
    ok &= SC_CHECK(m.spill_writes > 0, "nothing was spilled");
    sc_result("spillfile", ok,
              "mode=churn rank=%d cycles=%d file_max=%llu cycle_max=%llu file_full=%llu "
              "file_end=%llu writes=%llu reads=%llu",
              rank, cycles, (unsigned long long)file_max, (unsigned long long)cycle_max,
              (unsigned long long)file_full, (unsigned long long)m.spill_file_bytes,
              (unsigned long long)m.spill_writes, (unsigned long long)m.reads);
    return ok;
}

static int overwrite(dagr_ctx_t *ctx) {
    const size_t mib = (size_t)1 << 20;
    dagr_data_t *a = NULL, *b = NULL;
    SC_TRY(dagr_data_create(ctx, mib, 0, &a));
    SC_TRY(dagr_data_create(ctx, mib, 0, &b));
    spawn_on(ctx, &K_FILL, (fill_args_t){1, 0}, a, DAGR_WRITE, 0);
    spawn_on(ctx, &K_FILL, (fill_args_t){2, 0}, b, DAGR_WRITE, 0); /* spills a */
    spawn_on(ctx, &K_FILL, (fill_args_t){3, 0}, a, DAGR_WRITE, 0); /* spills b, a not read */
    int ok = SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    dagr_memory_stats_t m1, m2;
    SC_TRY(dagr_memory_stats(ctx, &m1));
    spawn_on(ctx, &K_FILL, (fill_args_t){4, 2}, b, DAGR_RW, 0); /* b read back */
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    SC_TRY(dagr_memory_stats(ctx, &m2));
    ok &= SC_CHECK(m1.spill_writes >= 2, "%llu writes: a and b should both have been spilled",
                   (unsigned long long)m1.spill_writes);
    ok &= SC_CHECK(m1.reads == 0, "a DAGR_WRITE task read a spilled buffer back (%llu reads)",
                   (unsigned long long)m1.reads);
    ok &= SC_CHECK(m2.reads == 1, "a DAGR_RW task on a spilled buffer: %llu reads, want 1",
                   (unsigned long long)m2.reads);
    ok &= fetch_ok(a, mib, 3, "a");
    ok &= fetch_ok(b, mib, 4, "b");
    SC_TRY(dagr_data_destroy(&a));
    SC_TRY(dagr_data_destroy(&b));
    sc_result("spillfile", ok, "mode=overwrite writes=%llu reads=%llu",
              (unsigned long long)m2.spill_writes, (unsigned long long)m2.reads);
    return ok;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    sc_set_rank(dagr_rank(ctx));
    if (!strcmp(mode, "churn"))
        churn(ctx, argc > 2 ? atoi(argv[2]) : 20);
    else if (!strcmp(mode, "overwrite"))
        overwrite(ctx);
    else
        sc_fail_at(__FILE__, __LINE__, "unknown mode '%s' (churn CYCLES | overwrite)", mode);
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    return sc_exit_code();
}
