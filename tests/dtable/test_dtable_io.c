/* DTable output (write_csv, save / load, to_darray) at 1-4 ranks and several partition counts
 * (tests/dtable/dtable_io.c compares with sqlite3, h5py and LAPACK). */
#include <criterion/criterion.h>

#include "mpirun.h"

static void run(int nranks, const char *args) {
    mpirun_t r;
    mpirun(&r, nranks, NULL, 300, "dtable_io", args);
    mpirun_assert_clean(&r);
    const char *names[] = {"csv_one_file",    "csv_per_partition", "csv_delim_null_text",
                           "csv_empty",       "csv_errors",        "h5_roundtrip",
                           "h5_h5py",         "h5_replace_empty",  "h5_other_writer",
                           "h5_errors",       "to_darray_values",  "to_darray_gels",
                           "to_darray_float", "to_darray_errors"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        mpirun_assert_result(&r, names[k], 1);
    mpirun_free(&r);
}

Test(dtable_io, one_rank, .timeout = 300) {
    run(1, "600 0");
    run(1, "300 1");
}

Test(dtable_io, two_ranks, .timeout = 300) {
    run(2, "800 0");
    run(2, "500 7"); /* more partitions than ranks */
}

Test(dtable_io, three_ranks, .timeout = 300) {
    run(3, "700 3");
}

Test(dtable_io, four_ranks, .timeout = 300) {
    run(4, "900 0");
    run(4, "10 9"); /* partitions with no record */
}
