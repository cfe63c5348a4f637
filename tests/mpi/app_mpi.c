/* Scenario: the application initialises and finalises MPI itself.
 *
 * Usage: app_mpi
 *
 * MPI_Init_thread(MPI_THREAD_MULTIPLE); then three dagr contexts one after another:
 *   1. cfg NULL (MPI_COMM_WORLD): a chain of tasks across ranks, dagr_comm is a congruent
 *      duplicate of MPI_COMM_WORLD; after dagr_finalize MPI is still initialised and an
 *      MPI_Allreduce on MPI_COMM_WORLD works;
 *   2. cfg.comm = half of the ranks (split by rank parity): each half runs its own graph;
 *   3. cfg NULL again.
 * Finally MPI_Allreduce again and MPI_Finalize.
 * Prints RANK r RESULT app_first|app_split|app_again|app_mpi_after ok|FAIL ... */
#include "scenario.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const dagr_kernel_t K_RW = {.name = "app_rw", .cpu = sc_k_rw};

/* Runs a chain of RW tasks hopping over the context's ranks; returns 1 when the fetched
 * result is right. */
static int chain(dagr_ctx_t *ctx, int len) {
    int size = dagr_size(ctx);
    dagr_data_t *h = NULL;
    SC_TRY(dagr_data_create(ctx, 8, size - 1, &h));
    uint64_t want = 0;
    for (uint64_t j = 0; j < (uint64_t)len; j++) {
        dagr_access_t acc[1] = {{h, DAGR_RW}};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = (int)(j % (uint64_t)size);
        SC_TRY(dagr_spawn(ctx, &K_RW, &j, sizeof j, 1, acc, &o));
        want = 3 * want + j;
    }
    uint64_t v = 0;
    SC_TRY(dagr_fetch(h, &v, -1));
    SC_TRY(dagr_data_destroy(&h));
    return SC_CHECK(v == want, "chain of %d gave %llu, want %llu", len, (unsigned long long)v,
                    (unsigned long long)want);
}

static int world_sum_ok(int wrank, int wsize) {
    long s = sc_allreduce_sum(MPI_COMM_WORLD, wrank + 1);
    return SC_CHECK(s == (long)wsize * (wsize + 1) / 2, "MPI_Allreduce gave %ld", s);
}

static int mpi_still_up(void) {
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return SC_CHECK(init == 1 && fin == 0, "after dagr_finalize: initialized %d finalized %d", init,
                    fin);
}

int main(int argc, char **argv) {
    int provided = -1, wrank = 0, wsize = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &wsize);
    sc_set_rank(wrank);
    if (!SC_CHECK(provided == MPI_THREAD_MULTIPLE, "MPI provided %d", provided)) {
        MPI_Finalize();
        return sc_exit_code();
    }

    /* 1. Default communicator. */
    dagr_ctx_t *ctx = NULL;
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    int ok = SC_CHECK(dagr_rank(ctx) == wrank && dagr_size(ctx) == wsize, "rank %d size %d",
                      dagr_rank(ctx), dagr_size(ctx));
    int cmp = MPI_UNEQUAL;
    MPI_Comm_compare(dagr_comm(ctx), MPI_COMM_WORLD, &cmp);
    ok &= SC_CHECK(cmp == MPI_CONGRUENT, "dagr_comm vs MPI_COMM_WORLD: %d (want congruent)", cmp);
    ok &= chain(ctx, 9);
    ok &= SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    ok &= SC_CHECK(ctx == NULL, "ctx not NULL after dagr_finalize");
    ok &= mpi_still_up();
    ok &= world_sum_ok(wrank, wsize);
    sc_result("app_first", ok, "size=%d", wsize);

    /* 2. A sub-communicator: even and odd world ranks run separate contexts. */
    MPI_Comm half;
    MPI_Comm_split(MPI_COMM_WORLD, wrank % 2, wrank, &half);
    int hrank, hsize;
    MPI_Comm_rank(half, &hrank);
    MPI_Comm_size(half, &hsize);
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.comm = half;
    SC_TRY(dagr_init(&argc, &argv, &cfg, &ctx));
    ok = SC_CHECK(dagr_rank(ctx) == hrank && dagr_size(ctx) == hsize,
                  "in half: rank %d size %d, want %d %d", dagr_rank(ctx), dagr_size(ctx), hrank,
                  hsize);
    cmp = MPI_UNEQUAL;
    MPI_Comm_compare(dagr_comm(ctx), half, &cmp);
    ok &= SC_CHECK(cmp == MPI_CONGRUENT, "dagr_comm vs cfg.comm: %d (want congruent)", cmp);
    ok &= chain(ctx, 5 + wrank % 2);
    ok &= SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    ok &= mpi_still_up();
    MPI_Comm_free(&half);
    ok &= world_sum_ok(wrank, wsize);
    sc_result("app_split", ok, "half_size=%d", hsize);

    /* 3. Once more with the defaults. */
    SC_TRY(dagr_init(NULL, NULL, NULL, &ctx));
    ok = chain(ctx, 4);
    ok &= SC_EXPECT_STATUS(dagr_finalize(&ctx), DAGR_OK);
    ok &= mpi_still_up();
    sc_result("app_again", ok, "size=%d", wsize);

    ok = world_sum_ok(wrank, wsize);
    ok &= MPI_Barrier(MPI_COMM_WORLD) == MPI_SUCCESS;
    sc_result("app_mpi_after", ok, "size=%d", wsize);
    MPI_Finalize();
    return sc_exit_code();
}
