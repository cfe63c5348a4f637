/* ScaLAPACK interoperability (darray/scalapack.c): tests/darray/darray_scalapack.c at 1-4
 * ranks. Each run covers every grid of 1x1, 1x2, 2x1, 2x2, 1x3 that fits the rank count,
 * with the ranks left over outside the grid. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

static const char *const results[] = {"wrap", "gemm", "gemm_custom", "gemm_wrapped", "bad_desc"};

static void scalapack(int nranks, const char *env) {
    mpirun_t r;
    mpirun(&r, nranks, env, 150, "darray_scalapack", NULL);
    if (mpirun_count(&r, 0, "SKIP") > 0) {
        mpirun_free(&r);
        cr_skip_test("dagr was built without ScaLAPACK");
    }
    mpirun_assert_clean(&r);
    for (size_t k = 0; k < sizeof results / sizeof results[0]; k++)
        mpirun_assert_result(&r, results[k], 1);
    mpirun_free(&r);
}

Test(darray_scalapack, one_rank, .timeout = 200) {
    scalapack(1, "DAGR_THREADS=2");
}
Test(darray_scalapack, two_ranks, .timeout = 200) {
    scalapack(2, "DAGR_THREADS=1");
}
Test(darray_scalapack, three_ranks, .timeout = 200) {
    scalapack(3, "DAGR_THREADS=1");
}
Test(darray_scalapack, four_ranks, .timeout = 200) {
    scalapack(4, "DAGR_THREADS=1");
}
