/* Dependency scenario: write-after-read, write-after-write and read-after-write across ranks.
 *
 * Usage: deps [ITERATIONS]
 *
 * One uint64 handle h owned by rank 0 is read and written by tasks on every rank. Slow tasks
 * (sleeps) are placed so that a runtime missing an edge would let the later task overtake:
 *   - WAR: readers on every rank (some held back behind slow "gate" tasks, one on the owner
 *     reading in place) must see the value from before a later overwrite;
 *   - RAW after a cached copy: a rank that read h once must see the new value after the owner
 *     overwrote it;
 *   - WAW: a slow writer on the last rank, then a fast writer on rank 1: the later one wins,
 *     and readers after both see it;
 *   - an RW chain hopping across ranks gives a value that depends on the order.
 * Prints RANK r RESULT war|raw_cache|waw|rwchain ok|FAIL ... */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct set_args {
    uint64_t value;
    int32_t sleep_ms;
} set_args_t;

/* access 0 (WRITE): *out = value, after sleeping; further accesses are ignored (gates). */
static dagr_task_result_t k_set(const dagr_task_view_t *t) {
    set_args_t a;
    memcpy(&a, t->args, sizeof a);
    if (a.sleep_ms) sc_sleep_ms(a.sleep_ms);
    memcpy(t->buf[0], &a.value, 8);
    return DAGR_TASK_DONE;
}

/* access 0 (READ) is copied to the last access (WRITE), after sleeping. */
static dagr_task_result_t k_copy(const dagr_task_view_t *t) {
    int32_t ms;
    memcpy(&ms, t->args, sizeof ms);
    if (ms) sc_sleep_ms(ms);
    memcpy(t->buf[t->nbuf - 1], t->buf[0], 8);
    return DAGR_TASK_DONE;
}

/* access 0 (RW): sleeps, then increments; used as a slow gate. */
static dagr_task_result_t k_gate(const dagr_task_view_t *t) {
    int32_t ms;
    memcpy(&ms, t->args, sizeof ms);
    sc_sleep_ms(ms);
    uint64_t x;
    memcpy(&x, t->buf[0], 8);
    x++;
    memcpy(t->buf[0], &x, 8);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_SET = {.name = "deps_set", .cpu = k_set};
static const dagr_kernel_t K_COPY = {.name = "deps_copy", .cpu = k_copy};
static const dagr_kernel_t K_RW = {.name = "deps_rw", .cpu = sc_k_rw};
static const dagr_kernel_t K_GATE = {.name = "deps_gate", .cpu = k_gate};

static dagr_ctx_t *ctx;
static int rank, size;

static dagr_data_t *new_u64(int owner) {
    dagr_data_t *d = NULL;
    SC_TRY(dagr_data_create(ctx, 8, owner, &d));
    return d;
}

static void set(dagr_data_t *d, uint64_t v, int ms, int on_rank) {
    set_args_t a = {.value = v, .sleep_ms = ms};
    dagr_access_t acc[1] = {{d, DAGR_WRITE}};
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = on_rank;
    SC_TRY(dagr_spawn(ctx, &K_SET, &a, sizeof a, 1, acc, &o));
}

/* dst = src, optionally also reading a gate handle first (so the copy waits for it). */
static void copy(dagr_data_t *src, dagr_data_t *gate, dagr_data_t *dst, int ms) {
    int32_t a = ms;
    dagr_access_t acc[3];
    int n = 0;
    acc[n++] = (dagr_access_t){src, DAGR_READ};
    if (gate) acc[n++] = (dagr_access_t){gate, DAGR_READ};
    acc[n++] = (dagr_access_t){dst, DAGR_WRITE};
    SC_TRY(dagr_spawn(ctx, &K_COPY, &a, sizeof a, n, acc, NULL));
}

static void gate(dagr_data_t *g, int ms) {
    int32_t a = ms;
    dagr_access_t acc[1] = {{g, DAGR_RW}};
    SC_TRY(dagr_spawn(ctx, &K_GATE, &a, sizeof a, 1, acc, NULL));
}

static uint64_t fetch_u64(dagr_data_t *d) {
    uint64_t v = 0xdeadbeefdeadbeefull;
    SC_TRY(dagr_fetch(d, &v, -1));
    return v;
}

#define MAXIT 8
#define MAXR 16

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 3;
    if (iters > MAXIT) iters = MAXIT;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    rank = dagr_rank(ctx);
    size = dagr_size(ctx);
    sc_set_rank(rank);
    if (size > MAXR) return 2;
    const int last = size - 1, one = 1 % size;

    dagr_data_t *h = new_u64(0), *g_last = new_u64(last), *g_0 = new_u64(0);
    dagr_data_t *r_last[MAXIT], *r_0[MAXIT], *r_each[MAXIT][MAXR], *r_after[MAXIT];
    dagr_data_t *r2[MAXIT], *r2o[MAXIT], *r3[MAXIT][MAXR];
    uint64_t want_chain[MAXIT];
    uint64_t expect_h = 0;
    for (int it = 0; it < iters; it++) {
        uint64_t base = 1000 * (uint64_t)(it + 1);
        r_last[it] = new_u64(last);
        r_0[it] = new_u64(0);
        r_after[it] = new_u64(last);
        r2[it] = new_u64(last);
        r2o[it] = new_u64(0);
        for (int q = 0; q < size; q++) {
            r_each[it][q] = new_u64(q);
            r3[it][q] = new_u64(q);
        }

        set(h, base + 1, 0, -1); /* on rank 0, the owner */
        gate(g_last, 150);
        gate(g_0, 150);
        /* WAR: readers held back behind the gates, one of them on the owner itself. */
        copy(h, g_last, r_last[it], 0);
        copy(h, g_0, r_0[it], 50);
        for (int q = 0; q < size; q++)
            copy(h, NULL, r_each[it][q], 30);
        set(h, base + 2, 0, -1);
        /* RAW: the last rank read h above; it must now see the new value. */
        copy(h, NULL, r_after[it], 0);
        /* WAW: slow writer on the last rank, then a fast one on rank 1. */
        set(h, base + 3, 120, last);
        set(h, base + 4, 0, one);
        copy(h, NULL, r2[it], 0);
        copy(h, NULL, r2o[it], 0);
        /* RW chain across ranks. */
        uint64_t x = base + 4;
        for (uint64_t j = 0; j < 6; j++) {
            dagr_access_t acc[1] = {{h, DAGR_RW}};
            dagr_task_opts_t o;
            dagr_task_opts_init(&o);
            o.rank = (int)(j % (uint64_t)size);
            SC_TRY(dagr_spawn(ctx, &K_RW, &j, sizeof j, 1, acc, &o));
            x = 3 * x + j;
        }
        want_chain[it] = x;
        expect_h = x;
        for (int q = 0; q < size; q++)
            copy(h, NULL, r3[it][q], 0);
    }
    SC_TRY(dagr_wait_all(ctx));

    int war_ok = 1, raw_ok = 1, waw_ok = 1, chain_ok = 1;
    for (int it = 0; it < iters; it++) {
        uint64_t base = 1000 * (uint64_t)(it + 1);
        uint64_t v;
        war_ok &=
            SC_CHECK((v = fetch_u64(r_last[it])) == base + 1,
                     "it %d: gated reader on rank %d saw %llu", it, last, (unsigned long long)v);
        war_ok &= SC_CHECK((v = fetch_u64(r_0[it])) == base + 1,
                           "it %d: gated reader on the owner saw %llu", it, (unsigned long long)v);
        for (int q = 0; q < size; q++)
            war_ok &= SC_CHECK((v = fetch_u64(r_each[it][q])) == base + 1,
                               "it %d: reader on rank %d saw %llu", it, q, (unsigned long long)v);
        raw_ok &=
            SC_CHECK((v = fetch_u64(r_after[it])) == base + 2,
                     "it %d: second reader on rank %d saw %llu", it, last, (unsigned long long)v);
        waw_ok &= SC_CHECK((v = fetch_u64(r2[it])) == base + 4,
                           "it %d: reader after both writers (rank %d) saw %llu", it, last,
                           (unsigned long long)v);
        waw_ok &= SC_CHECK((v = fetch_u64(r2o[it])) == base + 4,
                           "it %d: reader after both writers (rank 0) saw %llu", it,
                           (unsigned long long)v);
        for (int q = 0; q < size; q++)
            chain_ok &= SC_CHECK((v = fetch_u64(r3[it][q])) == want_chain[it],
                                 "it %d: reader on rank %d after the RW chain saw %llu, want "
                                 "%llu",
                                 it, q, (unsigned long long)v, (unsigned long long)want_chain[it]);
    }
    uint64_t hv = fetch_u64(h);
    chain_ok &= SC_CHECK(hv == expect_h, "final h %llu, want %llu", (unsigned long long)hv,
                         (unsigned long long)expect_h);
    uint64_t gl = fetch_u64(g_last), g0 = fetch_u64(g_0);
    war_ok &= SC_CHECK(gl == (uint64_t)iters && g0 == (uint64_t)iters, "gates %llu %llu",
                       (unsigned long long)gl, (unsigned long long)g0);

    sc_result("war", war_ok, "size=%d threads=%d iters=%d", size, dagr_threads(ctx), iters);
    sc_result("raw_cache", raw_ok, "size=%d", size);
    sc_result("waw", waw_ok, "size=%d", size);
    sc_result("rwchain", chain_ok, "size=%d final=%llu", size, (unsigned long long)hv);
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    return sc_exit_code();
}
