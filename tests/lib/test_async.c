/* Task bodies that complete asynchronously, and the worker init hook (tests/mpi/async.c): a
 * randomized graph mixing bodies that finish in the call, bodies whose work a helper thread
 * finishes later and bodies that complete before they return, against a serial replay at 1-4
 * ranks, out of core and between "nodes"; asynchronous failures, DAGR_TASK_ASYNC without a
 * token, and a token not used. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static void chain(int nranks, const char *env, int seed) {
    char args[64];
    snprintf(args, sizeof args, "chain %d 500", seed);
    mpirun_t r;
    mpirun(&r, nranks, env, 150, "async", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "async", 1);
    for (int rank = 0; rank < nranks; rank++) {
        const char *line = mpirun_line(&r, rank, "RESULT async", 0);
        long helper = -1, inl = -1, bad = -1;
        cr_assert(mpirun_value(line, "helper", &helper) && mpirun_value(line, "inline", &inl) &&
                      mpirun_value(line, "bad", &bad),
                  "%s", mpirun_tail(&r));
        cr_expect(helper > 0 && inl > 0 && bad == 0, "rank %d: %s", rank, line);
    }
    mpirun_free(&r);
}

Test(lib_async, one_rank, .timeout = 200) {
    chain(1, "DAGR_THREADS=2", 1);
}
Test(lib_async, two_ranks, .timeout = 200) {
    chain(2, "DAGR_THREADS=2", 2);
}
Test(lib_async, three_ranks, .timeout = 200) {
    chain(3, "DAGR_THREADS=1", 3);
}
Test(lib_async, four_ranks, .timeout = 200) {
    chain(4, "DAGR_THREADS=1", 4);
}
Test(lib_async, two_ranks_out_of_core, .timeout = 200) {
    chain(2, "DAGR_THREADS=2 DAGR_MEMORY_LIMIT=1K", 5);
}
Test(lib_async, three_ranks_offnode, .timeout = 200) {
    chain(3, "DAGR_THREADS=1 MPIR_CVAR_NOLOCAL=1", 6);
}

static void errors(int nranks) {
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=1", 90, "async", "errors");
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "async", 1);
    mpirun_free(&r);
}

Test(lib_async, errors_one_rank, .timeout = 200) {
    errors(1);
}
Test(lib_async, errors_three_ranks, .timeout = 200) {
    errors(3);
}
