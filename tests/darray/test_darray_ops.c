/* DArray operations at 1-4 ranks over several grids and awkward sizes (tests/darray/
 * darray_ops.c checks each operation against a serial computation), and random arrays that
 * are identical bit for bit whatever the rank count, grid or tiling. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "mpirun.h"

/* Runs darray_ops; returns the random hash of `dtype` printed by rank 0 (0 if none). */
static unsigned long long ops(int nranks, const char *env, const char *args, const char *dtype) {
    mpirun_t r;
    mpirun(&r, nranks, env, 300, "darray_ops", args);
    mpirun_assert_clean(&r);
    /* every operation reported, once per dtype */
    const char *names[] = {"fill",         "zeros",          "identity", "from_fn",
                           "random",       "scatter_gather", "set_get",  "map",
                           "axpby",        "broadcast",      "reduce",   "copy_redistribute",
                           "transpose",    "views",          "subarray", "elementwise_errors",
                           "reduce_errors"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        mpirun_assert_result(&r, names[k], 3);
    mpirun_assert_result(&r, "create_errors", 1);
    unsigned long long hash = 0;
    char key[64];
    snprintf(key, sizeof key, "RESULT random ok dtype=%s", dtype);
    const char *line = mpirun_line(&r, 0, key, 0);
    if (line) {
        const char *h = strstr(line, "hash=");
        if (h) sscanf(h + 5, "%llu", &hash);
    }
    mpirun_free(&r);
    return hash;
}

Test(darray_ops, one_rank, .timeout = 300) {
    ops(1, NULL, "1 1 37 53 8 5", "double");
    ops(1, "DAGR_THREADS=2", "0 0 6 7 8 8", "double");
}

Test(darray_ops, two_ranks_grids, .timeout = 600) {
    ops(2, NULL, "1 2 37 53 8 5", "double");
    ops(2, NULL, "2 1 37 53 8 5", "double");
    ops(2, NULL, "1 1 37 53 8 5", "double"); /* a grid smaller than the rank count */
    ops(2, "DAGR_COMM_SHM=0", "1 2 23 19 4 7", "double");
}

Test(darray_ops, three_ranks, .timeout = 600) {
    ops(3, NULL, "1 3 37 53 8 5", "double");
    ops(3, NULL, "0 0 17 3 1 1", "double");
}

Test(darray_ops, four_ranks, .timeout = 600) {
    ops(4, NULL, "2 2 37 53 8 5", "double");
    ops(4, NULL, "2 2 6 7 8 8", "double"); /* one tile */
}

Test(darray_ops, tiny_and_empty, .timeout = 600) {
    ops(2, NULL, "1 2 0 5 3 2", "double");
    ops(2, NULL, "2 1 5 0 2 2", "double");
    ops(3, NULL, "1 3 1 1 4 4", "double");
    ops(4, NULL, "2 2 2 9 1 2", "double");
}

/* The same seed gives the same matrix at any rank count, grid and tiling. */
Test(darray_ops, random_is_grid_independent, .timeout = 600) {
    const char *types[] = {"double", "float", "int64"};
    for (int k = 0; k < 3; k++) {
        unsigned long long a = ops(1, NULL, "1 1 29 31 8 5", types[k]);
        unsigned long long b = ops(2, NULL, "2 1 29 31 3 7", types[k]);
        unsigned long long c = ops(3, NULL, "1 3 29 31 29 31", types[k]);
        cr_assert(a != 0, "no hash printed");
        cr_expect_eq(a, b, "%s: 1 rank %llu vs 2 ranks %llu", types[k], a, b);
        cr_expect_eq(a, c, "%s: 1 rank %llu vs 3 ranks %llu", types[k], a, c);
    }
}
