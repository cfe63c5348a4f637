/* Stop signals across ranks (tests/mpi/stop.c): one rank gets SIGUSR1 or SIGTERM while a
 * step's tasks run; every rank must see dagr_stop_requested turn true after that same step,
 * none earlier, with the data of exactly the steps run; at 1-4 ranks, between "nodes". */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void stop(int nranks, int who, int step, const char *sig, const char *env) {
    char args[64], e[256];
    snprintf(args, sizeof args, "%d %d %s", who, step, sig);
    snprintf(e, sizeof e, "DAGR_STOP_SIGNALS=USR1,TERM DAGR_THREADS=1 %s", env ? env : "");
    mpirun_t r;
    mpirun(&r, nranks, e, 90, "stop", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "stop", 1);
    mpirun_free(&r);
}

Test(lib_stop, one_rank_usr1, .timeout = 120) {
    stop(1, 0, 3, "USR1", NULL);
}
Test(lib_stop, two_ranks_last_gets_term, .timeout = 120) {
    stop(2, 1, 7, "TERM", NULL);
}
Test(lib_stop, three_ranks_first_step, .timeout = 120) {
    stop(3, 2, 0, "USR1", NULL);
}
Test(lib_stop, four_ranks_offnode, .timeout = 120) {
    stop(4, 1, 11, "USR1", "MPIR_CVAR_NOLOCAL=1");
}
