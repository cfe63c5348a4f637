/* dagr_darray_save / dagr_darray_load at 1-4 ranks over several grids and shapes:
 * tests/darray/darray_io.c (round trips of every dtype checked byte for byte with h5dump,
 * other tiles and grids on load, views, overwrites, groups, datasets written by serial HDF5,
 * every error), and a traced run whose trace must show one HDF5 write and one read per tile,
 * each inside the task that did it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpirun.h"

#ifndef SOURCE_ROOT
#error "SOURCE_ROOT must be defined by the build"
#endif

/* Runs "P Q M N MB NB" on nranks ranks in a fresh directory and expects it clean. */
static void io(int nranks, const char *env, const char *shape) {
    char dir[256], args[512];
    mpirun_tmpdir(dir, sizeof dir, "io-test");
    snprintf(args, sizeof args, "%s %s", shape, dir);
    mpirun_t r;
    mpirun(&r, nranks, env, 240, "darray_io", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "roundtrip", 1);
    if (!strstr(args, " 0 ")) {
        mpirun_assert_result(&r, "more", 1);
        mpirun_assert_result(&r, "foreign", 1);
        mpirun_assert_result(&r, "io_errors", 1);
    }
    mpirun_free(&r);
    mpirun_rmdir(dir);
}

/* Tiles that do not divide the array. */
Test(darray_io, one_rank, .timeout = 300) {
    io(1, "DAGR_THREADS=2", "1 1 37 53 8 5");
}
/* One tile larger than the whole array. */
Test(darray_io, one_rank_single_tile, .timeout = 300) {
    io(1, "DAGR_THREADS=2", "1 1 6 7 8 8");
}
Test(darray_io, two_ranks_1x2, .timeout = 300) {
    io(2, "DAGR_THREADS=2", "1 2 37 53 8 5");
}
Test(darray_io, two_ranks_2x1_column, .timeout = 300) {
    io(2, "DAGR_THREADS=1", "2 1 40 1 6 1");
}
Test(darray_io, two_ranks_empty, .timeout = 300) {
    io(2, "DAGR_THREADS=1", "1 2 0 5 4 4");
}
Test(darray_io, three_ranks_1x3, .timeout = 300) {
    io(3, "DAGR_THREADS=1", "1 3 29 31 4 7");
}
Test(darray_io, four_ranks_2x2, .timeout = 300) {
    io(4, "DAGR_THREADS=1", "2 2 37 53 8 5");
}

/* Checks the "file I/O" lines of a summary table (dagr's or dagr-trace's): rank r wrote and
 * read want[r] bytes through HDF5 (save and load), and twice that in checkpoints. */
static void check_io_lines(const char *out, const long *want, int nranks, const char *who) {
    const char *p = out;
    for (int r = 0; r < nranks; r++) {
        p = strstr(p, "  file I/O: hdf5 write ");
        cr_assert_not_null(p, "%s: no file I/O line for rank %d\n%s", who, r, out);
        double w = -1, tw = -1, rd = -1, tr = -1, cw = -1, tcw = -1, cr = -1, tcr = -1;
        cr_assert_eq(sscanf(p,
                            "  file I/O: hdf5 write %lf MB in %lf s, hdf5 read %lf MB in %lf s, "
                            "checkpoint write %lf MB in %lf s, checkpoint read %lf MB in %lf s",
                            &w, &tw, &rd, &tr, &cw, &tcw, &cr, &tcr),
                     8, "%s: %.200s", who, p);
        cr_assert(fabs(w - want[r] * 1e-6) < 6e-4 && fabs(rd - want[r] * 1e-6) < 6e-4,
                  "%s: rank %d wrote %.3f and read %.3f MB, expected %.3f", who, r, w, rd,
                  want[r] * 1e-6);
        cr_assert(fabs(cw - 2 * want[r] * 1e-6) < 6e-4 && fabs(cr - 2 * want[r] * 1e-6) < 6e-4,
                  "%s: rank %d checkpointed %.3f and resumed %.3f MB, expected %.3f", who, r, cw,
                  cr, 2 * want[r] * 1e-6);
        cr_assert(tw > 0 && tr > 0 && tcw > 0 && tcr > 0, "%s: rank %d I/O times %g %g %g %g", who,
                  r, tw, tr, tcw, tcr);
        p++;
    }
}

/* A traced save and load, then a checkpoint and a resume of the two arrays, on a 2 x 1 grid:
 * 7 tasks per owned tile on each rank; per tile one "hdf5 write" and one "hdf5 read" of its
 * bytes, within the save or load task, and per tile of each array one "checkpoint write" and
 * one "checkpoint read"; the summary and dagr-trace report each rank's bytes. */
Test(darray_io, traced, .timeout = 300) {
    const int P = 2, Q = 1;
    const long M = 450, N = 300, MB = 80, NB = 70;
    long mt = (M + MB - 1) / MB, nt = (N + NB - 1) / NB, owned[2] = {0, 0}, bytes_of[2] = {0, 0};
    for (long ti = 0; ti < mt; ti++) {
        for (long tj = 0; tj < nt; tj++) {
            int r = (int)((ti % P) * Q + tj % Q);
            owned[r]++;
            long rows = M - ti * MB < MB ? M - ti * MB : MB,
                 cols = N - tj * NB < NB ? N - tj * NB : NB;
            bytes_of[r] += rows * cols * 8;
        }
    }
    char dir[256], env[512], args[512], cmd[2048], out[8192] = "";
    mpirun_tmpdir(dir, sizeof dir, "io-test");
    snprintf(env, sizeof env, "DAGR_THREADS=2 DAGR_SUMMARY=1 DAGR_TRACE=%s/t.json", dir);
    snprintf(args, sizeof args, "%d %d %ld %ld %ld %ld %s trace", P, Q, M, N, MB, NB, dir);
    mpirun_t r;
    mpirun(&r, 2, env, 120, "darray_io", args);
    mpirun_assert_clean(&r);
    mpirun_assert_result(&r, "traced_io", 1);
    check_io_lines(r.output, bytes_of, 2, "dagr summary");
    mpirun_free(&r);
    long bytes = M * N * 8, tiles = mt * nt;
    snprintf(cmd, sizeof cmd,
             "python3 %s/tests/lib/check_trace.py %s/t.json --tasks %ld,%ld "
             "--io 'hdf5 write=%ld:%ld' --io 'hdf5 read=%ld:%ld' "
             "--io 'checkpoint write=%ld:%ld' --io 'checkpoint read=%ld:%ld' 2>&1",
             SOURCE_ROOT, dir, 7 * owned[0], 7 * owned[1], tiles, bytes, tiles, bytes, 2 * tiles,
             2 * bytes, 2 * tiles, 2 * bytes);
    cr_assert_eq(mpirun_sh(cmd, out, sizeof out), 0, "%s\n%s", cmd, out);
    snprintf(cmd, sizeof cmd, "python3 %s/tools/dagr-trace %s/t.json 2>&1", SOURCE_ROOT, dir);
    out[0] = 0;
    cr_assert_eq(mpirun_sh(cmd, out, sizeof out), 0, "%s\n%s", cmd, out);
    check_io_lines(out, bytes_of, 2, "dagr-trace");
    mpirun_rmdir(dir);
}
