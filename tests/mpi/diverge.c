/* Divergence scenario: rank 1 inserts a graph different from the other ranks'.
 *
 * Usage: diverge kernel|mode|handle|extra|owner|bytes|backlog|allbacklog [NEXTRA]
 *
 * Every rank inserts tasks #0 .. #(DIFF-1) alike. Then, on rank 1 only:
 *   kernel  task #DIFF uses a kernel with another name (same body);
 *   mode    task #DIFF declares READ where the others declare RW;
 *   handle  task #DIFF names another handle (with the same owner and size);
 *   extra   after the common tasks, rank 1 inserts one more task (#NCOMMON), reading a handle
 *           of rank 0 and writing one of its own, that the others never insert;
 *   owner   rank 1 creates one handle (used by no task) with another owner;
 *   bytes   rank 1 creates one handle (used by no task) with another size;
 *   backlog rank 1 inserts NEXTRA more tasks (default 8), each reading a handle of rank 0 and
 *           writing one of its own: run with a DAGR_MAX_PENDING below NEXTRA, rank 1 waits in
 *           dagr_spawn for backlog room that never comes while the others wait in
 *           dagr_wait_all. dagr_spawn must return DAGR_ERR_DIVERGED on rank 1 (which then
 *           stops inserting) and dagr_wait_all on the others, naming task #NCOMMON.
 *   allbacklog  every rank inserts NEXTRA more tasks of its own, each reading a handle of the
 *           next rank (which never sends it): run with a DAGR_MAX_PENDING below NEXTRA, every
 *           rank waits in dagr_spawn and none reaches a collective. dagr_spawn must return
 *           DAGR_ERR_DIVERGED on every rank, naming task #NCOMMON (each rank's first extra
 *           task differs from the others').
 * (For owner and bytes the tasks all match, so only the status is checked.)
 * dagr_wait_all must return DAGR_ERR_DIVERGED on every rank, without hanging, naming the first
 * differing task; dagr_spawn must then refuse new tasks (DAGR_ERR_DIVERGED or DAGR_ERR_STATE)
 * and dagr_finalize must return. With one rank nothing diverges: dagr_wait_all returns
 * DAGR_OK.
 * Prints RANK r RESULT diverge ok|FAIL status=... seq=N message="..." and
 * RANK r RESULT diverge_finalize ok status=... */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIFF 7
#define NCOMMON 12

/* Increments access 0, unless given a (one-byte) argument saying it is read-only. */
static dagr_task_result_t k_inc(const dagr_task_view_t *t) {
    if (t->args_size > 0) return DAGR_TASK_DONE;
    uint64_t x;
    memcpy(&x, t->buf[0], 8);
    x++;
    memcpy(t->buf[0], &x, 8);
    return DAGR_TASK_DONE;
}

/* Copies access 0 into the last access. */
static dagr_task_result_t k_copy(const dagr_task_view_t *t) {
    memcpy(t->buf[t->nbuf - 1], t->buf[0], 8);
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_COMMON = {.name = "diverge_common", .cpu = k_inc};
static const dagr_kernel_t K_OTHER = {.name = "diverge_other", .cpu = k_inc};
static const dagr_kernel_t K_COPY = {.name = "diverge_copy", .cpu = k_copy};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s kernel|mode|handle|extra\n", argv[0]);
        return 2;
    }
    const char *how = argv[1];
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    const int rank = dagr_rank(ctx), size = dagr_size(ctx);
    sc_set_rank(rank);
    const int last = size - 1;
    const int odd = rank == 1; /* the diverging rank */

    dagr_data_t *h[2], *alt = NULL, *mine = NULL;
    SC_TRY(dagr_data_create(ctx, 8, 0, &h[0]));
    SC_TRY(dagr_data_create(ctx, 8, last, &h[1]));
    SC_TRY(dagr_data_create(ctx, 8, 0, &alt));
    SC_TRY(dagr_data_create(ctx, 8, last, &mine));
    dagr_data_t *odd_handle = NULL;
    if (strcmp(how, "owner") == 0) SC_TRY(dagr_data_create(ctx, 8, odd ? 0 : last, &odd_handle));
    if (strcmp(how, "bytes") == 0) SC_TRY(dagr_data_create(ctx, odd ? 16 : 8, 0, &odd_handle));

    const int allb = strcmp(how, "allbacklog") == 0;
    const int backlog = strcmp(how, "backlog") == 0 || allb;
    const long nextra = backlog && argc > 2 ? atol(argv[2]) : 8;
    dagr_data_t *next_rank = NULL, *own = NULL; /* allbacklog: the next rank's, and ours */
    if (allb) {
        for (int r = 0; r < size; r++) {
            dagr_data_t *x;
            SC_TRY(dagr_data_create(ctx, 8, r, &x));
            if (r == (rank + 1) % size) next_rank = x;
            if (r == rank) own = x;
        }
    }
    const int extra_here = allb ? size > 1 : backlog && odd;
    int expect_seq = strcmp(how, "extra") == 0 || backlog                     ? NCOMMON
                     : strcmp(how, "owner") == 0 || strcmp(how, "bytes") == 0 ? -1
                                                                              : DIFF;
    for (int i = 0; i < NCOMMON; i++) {
        const dagr_kernel_t *k = &K_COMMON;
        dagr_access_t acc[1] = {{h[i % 2], DAGR_RW}};
        const char readonly = 1;
        const void *args = NULL;
        size_t args_size = 0;
        if (i == DIFF && strcmp(how, "mode") == 0) {
            /* Same arguments everywhere: only the access mode differs on rank 1. */
            args = &readonly;
            args_size = 1;
            if (odd) acc[0].mode = DAGR_READ;
        }
        if (i == DIFF && odd) {
            if (strcmp(how, "kernel") == 0) k = &K_OTHER;
            if (strcmp(how, "handle") == 0) acc[0].data = alt;
        }
        SC_TRY(dagr_spawn(ctx, k, args, args_size, 1, acc, NULL));
    }
    if (odd && strcmp(how, "extra") == 0) {
        dagr_access_t acc[2] = {{h[0], DAGR_READ}, {mine, DAGR_WRITE}};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = rank;
        SC_TRY(dagr_spawn(ctx, &K_COPY, NULL, 0, 2, acc, &o));
    }
    dagr_status_t spawn_st = DAGR_OK;
    long spawned = 0;
    for (; extra_here && spawned < nextra && spawn_st == DAGR_OK; spawned++) {
        dagr_access_t acc[2] = {{allb ? next_rank : h[0], DAGR_READ},
                                {allb ? own : mine, DAGR_WRITE}};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = rank;
        spawn_st = dagr_spawn(ctx, &K_COPY, NULL, 0, 2, acc, &o);
    }
    if (extra_here) {
        /* Within the backlog every spawn succeeds; the one that would wait must fail. */
        int ok = SC_EXPECT_STATUS(spawn_st, DAGR_ERR_DIVERGED);
        sc_result("diverge_spawn", ok, "spawned %ld of %ld extra tasks, last status %s", spawned,
                  nextra, dagr_status_str(spawn_st));
    }

    double t0 = sc_now();
    dagr_status_t st = dagr_wait_all(ctx);
    double secs = sc_now() - t0;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", dagr_last_error());
    if (size == 1) {
        int ok = SC_EXPECT_STATUS(st, DAGR_OK);
        uint64_t v = 0;
        ok &= SC_EXPECT_STATUS(dagr_fetch(h[0], &v, -1), DAGR_OK);
        ok &= SC_CHECK(v == NCOMMON / 2, "h0 %llu", (unsigned long long)v);
        sc_result("diverge", ok, "how=%s status=%s size=1", how, dagr_status_str(st));
    } else {
        /* lib/divergence.c words it "the first differing task is #N". */
        char seqs[64];
        snprintf(seqs, sizeof seqs, "first differing task is #%d", expect_seq);
        const char *at = strstr(msg, seqs);
        char after = at ? at[strlen(seqs)] : 'x';
        int ok = SC_EXPECT_STATUS(st, DAGR_ERR_DIVERGED);
        ok &= SC_CHECK(expect_seq < 0 || (at != NULL && (after < '0' || after > '9')),
                       "message \"%s\" does not say \"%s\"", msg, seqs);
        /* The context may only be finalised now: new tasks are refused. */
        dagr_access_t acc[1] = {{h[0], DAGR_RW}};
        dagr_status_t st2 = dagr_spawn(ctx, &K_COMMON, NULL, 0, 1, acc, NULL);
        ok &= SC_CHECK(st2 == DAGR_ERR_DIVERGED || st2 == DAGR_ERR_STATE,
                       "dagr_spawn after divergence returned %s", dagr_status_str(st2));
        sc_result("diverge", ok, "how=%s status=%s seq=%d size=%d secs=%.2f message=\"%s\"", how,
                  dagr_status_str(st), expect_seq, size, secs, msg);
    }
    st = dagr_finalize(&ctx);
    sc_result("diverge_finalize", ctx == NULL, "status=%s", dagr_status_str(st));
    return sc_exit_code();
}
