/* Ranks inserting different graphs: tests/mpi/diverge.c. dagr_wait_all must return
 * DAGR_ERR_DIVERGED on every rank, naming the first differing task, without hanging; then
 * dagr_finalize must return. With one rank nothing diverges. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void diverge(int nranks, const char *how) {
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=1", 60, "diverge", how);
    mpirun_assert_result(&r, "diverge", 1);
    mpirun_assert_result(&r, "diverge_finalize", 1);
    mpirun_assert_clean(&r);
    mpirun_free(&r);
}

Test(lib_divergence, one_rank_no_divergence, .timeout = 120) {
    diverge(1, "kernel");
}
Test(lib_divergence, kernel_name_two_ranks, .timeout = 120) {
    diverge(2, "kernel");
}
Test(lib_divergence, kernel_name_three_ranks, .timeout = 120) {
    diverge(3, "kernel");
}
Test(lib_divergence, kernel_name_four_ranks, .timeout = 120) {
    diverge(4, "kernel");
}
Test(lib_divergence, access_mode_two_ranks, .timeout = 120) {
    diverge(2, "mode");
}
Test(lib_divergence, access_mode_three_ranks, .timeout = 120) {
    diverge(3, "mode");
}
Test(lib_divergence, handle_two_ranks, .timeout = 120) {
    diverge(2, "handle");
}
Test(lib_divergence, handle_four_ranks, .timeout = 120) {
    diverge(4, "handle");
}
Test(lib_divergence, extra_task_two_ranks, .timeout = 120) {
    diverge(2, "extra");
}
Test(lib_divergence, extra_task_three_ranks, .timeout = 120) {
    diverge(3, "extra");
}
Test(lib_divergence, extra_task_four_ranks, .timeout = 120) {
    diverge(4, "extra");
}
Test(lib_divergence, handle_owner_two_ranks, .timeout = 120) {
    diverge(2, "owner");
}
Test(lib_divergence, handle_bytes_three_ranks, .timeout = 120) {
    diverge(3, "bytes");
}

/* Rank 1's extra tasks wait for data rank 0 never sends and fill its backlog, so rank 1 waits
 * in dagr_spawn while the others wait in dagr_wait_all: every rank must still get
 * DAGR_ERR_DIVERGED (the spawn that waits, on rank 1), never hang. */
static void diverge_backlog(int nranks, const char *env, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, env, 90, "diverge", args);
    mpirun_assert_result(&r, "diverge", 1);
    cr_assert_eq(mpirun_count(&r, 1, "RESULT diverge_spawn ok"), 1,
                 "rank 1's dagr_spawn did not fail with DAGR_ERR_DIVERGED:\n%s", mpirun_tail(&r));
    mpirun_assert_result(&r, "diverge_finalize", 1);
    mpirun_assert_clean(&r);
    mpirun_free(&r);
}

Test(lib_divergence, backlog_full_two_ranks, .timeout = 120) {
    diverge_backlog(2, "DAGR_THREADS=1 DAGR_MAX_PENDING=4", "backlog 8");
}
Test(lib_divergence, backlog_full_three_ranks, .timeout = 120) {
    diverge_backlog(3, "DAGR_THREADS=1 DAGR_MAX_PENDING=4", "backlog 8");
}
Test(lib_divergence, backlog_full_four_ranks_off_node, .timeout = 120) {
    diverge_backlog(4, "DAGR_THREADS=1 DAGR_MAX_PENDING=4 DAGR_COMM_SHM=0 MPIR_CVAR_NOLOCAL=1",
                    "backlog 8");
}
Test(lib_divergence, backlog_default_size, .timeout = 240) {
    diverge_backlog(2, "DAGR_THREADS=1", "backlog 70000");
}

/* Every rank's extra tasks wait for data the next rank never sends: every rank waits in
 * dagr_spawn for backlog room and none reaches a collective call. Each must see every rank
 * stalled, with nothing finishing anywhere, and every dagr_spawn that waits must return
 * DAGR_ERR_DIVERGED (in a few seconds), never hang. */
static void diverge_all_backlog(int nranks, const char *env, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, env, 90, "diverge", args);
    mpirun_assert_result(&r, "diverge", 1);
    mpirun_assert_result(&r, "diverge_spawn", 1);
    mpirun_assert_result(&r, "diverge_finalize", 1);
    mpirun_assert_clean(&r);
    cr_expect_lt(r.seconds, 30.0, "took %.1f s", r.seconds);
    mpirun_free(&r);
}

Test(lib_divergence, every_rank_in_backlog_two_ranks, .timeout = 120) {
    diverge_all_backlog(2, "DAGR_THREADS=1 DAGR_MAX_PENDING=4", "allbacklog 8");
}
Test(lib_divergence, every_rank_in_backlog_three_ranks, .timeout = 120) {
    diverge_all_backlog(3, "DAGR_THREADS=2 DAGR_MAX_PENDING=4", "allbacklog 8");
}
Test(lib_divergence, every_rank_in_backlog_four_ranks_off_node, .timeout = 120) {
    diverge_all_backlog(4, "DAGR_THREADS=1 DAGR_MAX_PENDING=4 MPIR_CVAR_NOLOCAL=1", "allbacklog 8");
}
