/* dagr_darray_stencil at 1-4 ranks over several grids, shapes and radii:
 * tests/darray/darray_stencil.c (every boundary rule and dtype against a serial stencil, views,
 * A and B on different distributions, argument errors and the too-wide-halo refusal). */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mpirun.h"

/* Runs the scenario "P Q M N MB NB RADII" on nranks ranks and expects it clean. */
static void stencil(int nranks, const char *env, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, env, 120, "darray_stencil", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "stencil", 1);
    mpirun_assert_result(&r, "stencil_errors", 1);
    mpirun_free(&r);
}

/* Tiles that do not divide the array; radius 7 is wider than the 8 x 5 tiles' columns. */
Test(darray_stencil, one_rank, .timeout = 300) {
    stencil(1, "DAGR_THREADS=2", "1 1 37 53 8 5 0,1,2,7");
}
/* One tile smaller than its nominal size; radius 9 is larger than the whole array. */
Test(darray_stencil, one_rank_single_tile, .timeout = 300) {
    stencil(1, "DAGR_THREADS=2", "1 1 6 7 8 8 0,1,3,9");
}
Test(darray_stencil, two_ranks_1x2, .timeout = 300) {
    stencil(2, "DAGR_THREADS=2", "1 2 37 53 8 5 0,1,2");
}
/* Radius 7 spans several 5 x 4 tiles in both directions. */
Test(darray_stencil, two_ranks_2x1_radius_over_tile, .timeout = 300) {
    stencil(2, "DAGR_THREADS=2", "2 1 37 53 5 4 1,7");
}
/* One row and one column: the halo is larger than the array in one dimension. */
Test(darray_stencil, two_ranks_one_row, .timeout = 300) {
    stencil(2, "DAGR_THREADS=2", "1 2 1 40 1 6 1,2,7");
}
Test(darray_stencil, two_ranks_one_column, .timeout = 300) {
    stencil(2, "DAGR_THREADS=1", "2 1 40 1 6 1 1,2,7");
}
Test(darray_stencil, two_ranks_empty, .timeout = 300) {
    stencil(2, "DAGR_THREADS=1", "1 2 0 5 4 4 0,1,2");
    stencil(2, "DAGR_THREADS=1", "2 1 5 0 4 4 1");
}
Test(darray_stencil, three_ranks_1x3, .timeout = 300) {
    stencil(3, "DAGR_THREADS=1", "1 3 37 53 8 5 1,2");
}
Test(darray_stencil, three_ranks_single_tile, .timeout = 300) {
    stencil(3, "DAGR_THREADS=1", "1 3 6 7 8 8 0,1,3,9");
}
Test(darray_stencil, four_ranks_2x2, .timeout = 300) {
    stencil(4, "DAGR_THREADS=1", "2 2 37 53 8 5 0,1,2,7");
}
/* 1 x 1 arrays: every halo element is the one element or a zero. */
Test(darray_stencil, four_ranks_1x1_array, .timeout = 300) {
    stencil(4, "DAGR_THREADS=1", "2 2 1 1 1 1 0,1,3");
}
