/* libdagr-scalapack against the real ScaLAPACK: tests/scalapack/dropin.c at 1, 3 and 4 ranks (grids
 * of 1 to 4 processes, ranks left out of a grid not calling; two ranks run ScaLAPACK's own
 * testers in test_testers). */
#include <criterion/criterion.h>

#include "mpirun.h"

static const char *const results[] = {"thread", "getrf", "geqrf", "potrf", "blas3", "passed"};

static void dropin(int nranks) {
    mpirun_t r;
    mpirun(&r, nranks, "DAGR_THREADS=1", 240, "scalapack_dropin", NULL);
    mpirun_assert_clean(&r);
    for (size_t k = 0; k < sizeof results / sizeof results[0]; k++)
        mpirun_assert_result(&r, results[k], 1);
    mpirun_free(&r);
}

Test(scalapack_dropin, one_rank, .timeout = 300) {
    dropin(1);
}
Test(scalapack_dropin, three_ranks, .timeout = 300) {
    dropin(3);
}
Test(scalapack_dropin, four_ranks, .timeout = 300) {
    dropin(4);
}
