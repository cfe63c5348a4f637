/* dagr_fetch to one root and to all ranks, and the worker count (DAGR_THREADS over
 * cfg.threads): tests/mpi/fetch.c. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include "mpirun.h"

/* Runs the scenario; env may be NULL; cfg_threads NULL leaves cfg.threads at its default;
 * want_threads 0 means the default worker count. */
static void fetch(int nranks, const char *env, const char *cfg_threads, long want_threads) {
    mpirun_t r;
    mpirun(&r, nranks, env, 90, "fetch", cfg_threads);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "fetch", 1);
    for (int rank = 0; rank < nranks; rank++) {
        long th = -1, node_ranks = -1;
        const char *line = mpirun_line(&r, rank, "RESULT fetch", 0);
        cr_assert(mpirun_value(line, "threads", &th), "%s", mpirun_tail(&r));
        cr_assert(mpirun_value(line, "node_ranks", &node_ranks) && node_ranks >= 1, "%s",
                  mpirun_tail(&r));
        if (want_threads > 0)
            cr_expect_eq(th, want_threads, "rank %d: dagr_threads() = %ld, want %ld", rank, th,
                         want_threads);
        else {
            /* Default: cores on the node / ranks on it (online CPUs or this process's CPU
             * set, whichever the implementation counts), at least 1. The scenario says how
             * many ranks MPI put on its node (one each in the multi-node mode). */
            cpu_set_t set;
            long online = sysconf(_SC_NPROCESSORS_ONLN), mine = online;
            if (sched_getaffinity(0, sizeof set, &set) == 0) mine = CPU_COUNT(&set);
            long a = online / node_ranks > 1 ? online / node_ranks : 1;
            long b = mine / node_ranks > 1 ? mine / node_ranks : 1;
            cr_expect(th == a || th == b, "rank %d: dagr_threads() = %ld, want %ld or %ld", rank,
                      th, a, b);
        }
    }
    mpirun_free(&r);
}

Test(lib_fetch, one_rank, .timeout = 200) {
    fetch(1, "DAGR_THREADS=2", NULL, 2);
}
Test(lib_fetch, two_ranks, .timeout = 200) {
    fetch(2, "DAGR_THREADS=2", NULL, 2);
}
Test(lib_fetch, three_ranks, .timeout = 200) {
    fetch(3, "DAGR_THREADS=1", NULL, 1);
}
Test(lib_fetch, four_ranks, .timeout = 200) {
    fetch(4, "DAGR_THREADS=1", NULL, 1);
}
Test(lib_fetch, env_overrides_config, .timeout = 200) {
    fetch(2, "DAGR_THREADS=1", "3", 1);
}
Test(lib_fetch, config_threads_without_env, .timeout = 200) {
    fetch(2, NULL, "3", 3);
}
Test(lib_fetch, default_threads, .timeout = 200) {
    fetch(2, NULL, NULL, 0);
}
Test(lib_fetch, three_ranks_mpi_path, .timeout = 200) {
    fetch(3, "DAGR_THREADS=2 DAGR_COMM_SHM=0", NULL, 2);
}
