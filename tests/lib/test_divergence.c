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
