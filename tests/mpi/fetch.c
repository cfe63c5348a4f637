/* dagr_fetch scenario, plus the worker count each rank reports.
 *
 * Usage: fetch [CFG_THREADS]
 *
 * With CFG_THREADS, cfg.threads is set to it (the environment's DAGR_THREADS, if any, must
 * win). A handle owned by the last rank is written by a task; dagr_fetch to each root in turn
 * must fill dst on the root only (others' dst untouched, also when they pass NULL), and
 * fetch to -1 fills it everywhere. Also: an attached handle of rank 0, a 0-byte handle with
 * NULL dst everywhere, and a fetch right after a new write (fetch implies the wait).
 * Prints RANK r RESULT fetch ok|FAIL ... threads=T */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 64

/* Writes value*1000 + j into element j of access 0. */
static dagr_task_result_t k_fill(const dagr_task_view_t *t) {
    uint64_t v;
    memcpy(&v, t->args, 8);
    size_t n = t->bytes[0] / 8;
    for (size_t j = 0; j < n; j++) {
        uint64_t x = v * 1000 + j;
        memcpy((char *)t->buf[0] + 8 * j, &x, 8);
    }
    return DAGR_TASK_DONE;
}

static const dagr_kernel_t K_FILL = {.name = "fetch_fill", .cpu = k_fill};

/* Adds 1 to every element of a 5 x 3 uint64 matrix, checking the leading dimension the task
 * is given: the owner's own ld (8) on the owner, the packed 5 elsewhere. */
static dagr_task_result_t k_bump(const dagr_task_view_t *t) {
    uint64_t *m = t->buf[0];
    size_t want_ld = t->rank == 0 ? 8 : 5;
    if (t->ld[0] != want_ld || t->bytes[0] != 5 * 3 * 8) {
        dagr_task_fail(t, DAGR_ERR_TASK, "ld %zu (want %zu), bytes %zu", t->ld[0], want_ld,
                       t->bytes[0]);
        return DAGR_TASK_ERROR;
    }
    for (size_t c = 0; c < 3; c++)
        for (size_t r = 0; r < 5; r++)
            m[r + c * t->ld[0]]++;
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t K_BUMP = {.name = "fetch_bump", .cpu = k_bump};

static dagr_ctx_t *ctx;
static int rank, size;

static void fill(dagr_data_t *d, uint64_t v) {
    dagr_access_t acc[1] = {{d, DAGR_WRITE}};
    SC_TRY(dagr_spawn(ctx, &K_FILL, &v, sizeof v, 1, acc, NULL));
}

static int is_pattern(const uint64_t *p, size_t n, uint64_t v) {
    for (size_t j = 0; j < n; j++)
        if (p[j] != v * 1000 + j) return 0;
    return 1;
}

static int untouched(const uint64_t *p, size_t n) {
    for (size_t j = 0; j < n; j++)
        if (p[j] != 0xABABABABABABABABull) return 0;
    return 1;
}

/* Fetches d (n uint64) to root; checks that exactly the receiving ranks got pattern v. When
 * null_elsewhere, non-receiving ranks pass dst NULL. */
static int fetch_check(dagr_data_t *d, size_t n, int root, uint64_t v, int null_elsewhere) {
    uint64_t *dst = malloc((n + 1) * 8);
    memset(dst, 0xAB, (n + 1) * 8);
    int receives = root == -1 || root == rank;
    int ok =
        SC_EXPECT_STATUS(dagr_fetch(d, (receives || !null_elsewhere) ? dst : NULL, root), DAGR_OK);
    if (receives)
        ok &= SC_CHECK(is_pattern(dst, n, v), "root %d: rank %d did not receive the contents", root,
                       rank);
    else
        ok &= SC_CHECK(untouched(dst, n), "root %d: rank %d's dst was written", root, rank);
    ok &= SC_CHECK(untouched(dst + n, 1), "root %d: fetch wrote past the end", root);
    free(dst);
    return ok;
}

int main(int argc, char **argv) {
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    if (argc > 1) cfg.threads = atoi(argv[1]);
    SC_TRY(dagr_init(&argc, &argv, &cfg, &ctx));
    rank = dagr_rank(ctx);
    size = dagr_size(ctx);
    sc_set_rank(rank);
    const int last = size - 1;
    int ok = 1;

    dagr_data_t *h = NULL, *z = NULL, *att = NULL;
    SC_TRY(dagr_data_create(ctx, N * 8, last, &h));
    SC_TRY(dagr_data_create(ctx, 0, last, &z));
    uint64_t *abuf = NULL;
    if (rank == 0) {
        abuf = malloc(N * 8);
        for (size_t j = 0; j < N; j++)
            abuf[j] = 5 * 1000 + j; /* attached: pattern 5 */
    }
    SC_TRY(dagr_data_attach(ctx, abuf, N * 8, 0, &att));

    /* Zero-filled at creation. */
    uint64_t zero[N];
    memset(zero, 1, sizeof zero);
    ok &= SC_EXPECT_STATUS(dagr_fetch(h, zero, -1), DAGR_OK);
    int zeros = 1;
    for (int j = 0; j < N; j++)
        zeros &= zero[j] == 0;
    ok &= SC_CHECK(zeros, "a new handle is not zero-filled");

    fill(h, 7);
    for (int root = -1; root < size; root++)
        ok &= fetch_check(h, N, root, 7, 0);
    for (int root = -1; root < size; root++)
        ok &= fetch_check(h, N, root, 7, 1);
    /* Fetch right after a write: fetch implies the wait. */
    fill(h, 9);
    ok &= fetch_check(h, N, 0, 9, 0);
    fill(h, 11);
    ok &= fetch_check(h, N, -1, 11, 1);
    /* The attached handle, untouched by tasks, then rewritten. */
    for (int root = -1; root < size; root++)
        ok &= fetch_check(att, N, root, 5, 0);
    fill(att, 13);
    ok &= fetch_check(att, N, last, 13, 0);
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    if (rank == 0) ok &= SC_CHECK(is_pattern(abuf, N, 13), "attached buffer not updated");
    /* A 0-byte handle: NULL dst everywhere is fine. */
    ok &= SC_EXPECT_STATUS(dagr_fetch(z, NULL, -1), DAGR_OK);
    ok &= SC_EXPECT_STATUS(dagr_fetch(z, NULL, 0), DAGR_OK);

    /* dst NULL on one receiving rank only: every rank gets DAGR_ERR_ARG (collective calls
     * return the same status everywhere), and nothing hangs. */
    if (size > 1) {
        uint64_t tmp[N];
        ok &= SC_EXPECT_STATUS(dagr_fetch(h, rank == last ? NULL : tmp, -1), DAGR_ERR_ARG);
        ok &= fetch_check(h, N, -1, 11, 0);
    }

    /* A strided 5 x 3 block (ld 8) on rank 0, bumped on the last rank (packed there), then
     * fetched packed everywhere; rank 0's padding rows are never touched. */
    uint64_t sbuf[24], packed[15];
    for (int k = 0; k < 24; k++)
        sbuf[k] = k % 8 < 5 ? (uint64_t)(100 + k) : 0xdead;
    dagr_data_t *sh = NULL;
    SC_TRY(dagr_data_attach_2d(ctx, rank == 0 ? sbuf : NULL, 5, 3, 8, 8, 0, &sh));
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    o.rank = last;
    dagr_access_t sa = {sh, DAGR_RW};
    for (int rep = 0; rep < 2; rep++) {
        SC_TRY(dagr_spawn(ctx, &K_BUMP, NULL, 0, 1, &sa, &o));
        int root = rep == 0 ? -1 : last;
        memset(packed, 0, sizeof packed);
        ok &= SC_EXPECT_STATUS(dagr_fetch(sh, packed, root), DAGR_OK);
        for (int c = 0; c < 3 && (root == -1 || rank == root); c++)
            for (int r = 0; r < 5; r++)
                ok &= SC_CHECK(packed[r + c * 5] == (uint64_t)(100 + r + c * 8 + rep + 1),
                               "strided fetch (%d, %d) = %llu", r, c,
                               (unsigned long long)packed[r + c * 5]);
    }
    SC_TRY(dagr_data_destroy(&sh));
    ok &= SC_EXPECT_STATUS(dagr_wait_all(ctx), DAGR_OK);
    for (int k = 0; k < 24 && rank == 0; k++) {
        uint64_t want = k % 8 < 5 ? (uint64_t)(102 + k) : 0xdead;
        ok &= SC_CHECK(sbuf[k] == want, "strided home element %d = %llu", k,
                       (unsigned long long)sbuf[k]);
    }
    /* ld is the owner's business (it is checked there only, like ptr): one rank here. */
    if (size == 1)
        ok &= SC_EXPECT_STATUS(dagr_data_attach_2d(ctx, sbuf, 5, 3, 4, 8, 0, &sh), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_data_attach_2d(ctx, sbuf, 5, 3, 8, 0, 0, &sh), DAGR_ERR_ARG);

    /* The ranks MPI places on this node (all of them on one machine, one in MPICH's network
     * mode): the default thread count divides the cores among them. */
    MPI_Comm node;
    int node_ranks = 0;
    MPI_Comm_split_type(dagr_comm(ctx), MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &node_ranks);
    MPI_Comm_free(&node);
    sc_result("fetch", ok, "size=%d threads=%d node_ranks=%d", size, dagr_threads(ctx), node_ranks);
    SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    free(abuf);
    return sc_exit_code();
}
