/* io_bench: dagr_darray_save and dagr_darray_load against two references, and dagr_checkpoint
 * and dagr_resume against save, load and POSIX, in one run.
 *
 * An n x n double array in tile x tile tiles (default 8192 x 8192 = 512 MiB, 512 x 512 tiles)
 * on the squarest grid. Each timed round of dagr is interleaved with a round of each
 * reference, over the same bytes (8 n^2):
 *
 *   save    dagr_darray_save into a new file. Every writer's file is removed before its
 *           round, outside the timing (truncating a large file in the page cache is slow).
 *   load    dagr_darray_load with the same tiles and grid.
 *
 *   serial  what a program without dagr does: gather the array on rank 0
 *           (dagr_darray_gather) and write it with serial HDF5 as one contiguous dataset in one
 *           H5Dwrite (its column-major buffer written as is, as an n x n dataset of the
 *           transpose: no transposition, which favours it); for a load, one H5Dread on rank 0
 *           and dagr_darray_scatter.
 *   posix   the file system's own pace for the same number of processes: every rank writes
 *           (reads) its share of the bytes, 8 n^2 / ranks, to (from) a file of its own with one
 *           write (read) call.
 *
 * Nothing is synced to disk (no fsync, as H5Fclose does not sync either): on a machine with
 * memory to spare the figures are those of the page cache and of the code above it.
 *
 * Times are taken with MPI_Wtime from an MPI_Barrier to the end of the call on every rank;
 * the figure is the slowest rank's, best (and median) of --repeat rounds after one untimed
 * warm-up round. GB/s = 1e9 bytes / s. vs_serial and vs_posix = dagr GB/s / reference GB/s.
 *
 *   checkpoint  dagr_checkpoint with the array as the only live data (the same bytes), which
 *           syncs the file to disk before renaming it; against dagr_darray_save of the array
 *           (not synced) and POSIX with an fsync per rank's file. Before the checkpoint and
 *           before the POSIX write, outside the timing, every rank calls sync(), so that
 *           neither competes with the write-back of the files of earlier cases.
 *   resume  dagr_resume of that checkpoint (reads and checks every tile's checksum), after the
 *           array was scaled; against dagr_darray_load and a POSIX read.
 *
 * Check: after the load rounds, the loaded array minus the saved one has a max-norm of 0, and
 * after the resume rounds, the resumed array minus one loaded from the same state too.
 *
 * Prints one JSON object per case on rank 0.
 *
 *   mpiexec.mpich -n 2 build/benchmarks/io_bench [--n N] [--tile T] [--repeat R]
 *       [--threads T] [--dir DIR]
 */
#include <dagr/dagr.h>

#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dagr_ctx_t *ctx;
static MPI_Comm comm;
static int me, nranks;
static int64_t n = 8192, tile = 512;
static int repeat = 3, threads = 0;
static const char *dir = "/tmp";
static char h5path[1024], serialpath[1024], rawpath[1024], ckptpath[1024];

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The slowest rank's elapsed time since t0. */
static double slowest(double t0) {
    double t = MPI_Wtime() - t0, tmax = 0;
    MPI_Allreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, comm);
    return tmax;
}

static void die(dagr_status_t s, const char *what) {
    if (s == DAGR_OK) return;
    fprintf(stderr, "io_bench: rank %d: %s: %s (%s)\n", me, what, dagr_status_str(s),
            dagr_last_error());
    MPI_Abort(comm, 1);
}

static double start(void) {
    MPI_Barrier(comm);
    return MPI_Wtime();
}

/* ---- dagr ---- */

static double dagr_save(const dagr_darray_t *A) {
    if (me == 0) remove(h5path);
    double t0 = start();
    die(dagr_darray_save(A, h5path, "A"), "dagr_darray_save");
    return slowest(t0);
}

static double dagr_load(dagr_darray_t **B) {
    dagr_darray_destroy(B);
    double t0 = start();
    die(dagr_darray_load(ctx, h5path, "A", tile, tile, dagr_grid_2d(0, 0), B), "dagr_darray_load");
    return slowest(t0);
}

static double dagr_ckpt(void) {
    double t0 = start();
    die(dagr_checkpoint(ctx, ckptpath), "dagr_checkpoint");
    return slowest(t0);
}

static double dagr_resume_time(void) {
    double t0 = start();
    die(dagr_resume(ctx, ckptpath), "dagr_resume");
    return slowest(t0);
}

/* ---- serial HDF5 on rank 0 ---- */

static double serial_save(const dagr_darray_t *A, double *buf) {
    if (me == 0) remove(serialpath);
    double t0 = start();
    die(dagr_darray_gather(A, buf, n, 0), "dagr_darray_gather");
    if (me == 0) {
        hsize_t dims[2] = {(hsize_t)n, (hsize_t)n};
        hid_t f = H5Fcreate(serialpath, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hid_t s = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(f, "A", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0 || d < 0 ||
            H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            die(DAGR_ERR_IO, "serial HDF5 write");
        H5Dclose(d);
        H5Sclose(s);
        H5Fclose(f);
    }
    return slowest(t0);
}

static double serial_load(dagr_darray_t *C, double *buf) {
    double t0 = start();
    if (me == 0) {
        hid_t f = H5Fopen(serialpath, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = H5Dopen2(f, "A", H5P_DEFAULT);
        if (f < 0 || d < 0 || H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            die(DAGR_ERR_IO, "serial HDF5 read");
        H5Dclose(d);
        H5Fclose(f);
    }
    die(dagr_darray_scatter(C, buf, n, 0), "dagr_darray_scatter");
    return slowest(t0);
}

/* ---- plain POSIX files, one per rank ---- */

static double posix_io(char *share, size_t bytes, int write_it, int sync_it) {
    if (write_it) remove(rawpath);
    double t0 = start();
    int fd = write_it ? open(rawpath, O_WRONLY | O_CREAT | O_TRUNC, 0644) : open(rawpath, O_RDONLY);
    size_t done = 0;
    while (fd >= 0 && done < bytes) {
        ssize_t k =
            write_it ? write(fd, share + done, bytes - done) : read(fd, share + done, bytes - done);
        if (k <= 0) break;
        done += (size_t)k;
    }
    if (fd < 0 || done != bytes) die(DAGR_ERR_IO, write_it ? "posix write" : "posix read");
    if (sync_it && fsync(fd) != 0) die(DAGR_ERR_IO, "posix fsync");
    close(fd);
    return slowest(t0);
}

/* ---- reporting ---- */

typedef struct stats {
    double best, median;
} stats_t;

static stats_t stats_of(double *t, int k) {
    qsort(t, (size_t)k, sizeof *t, cmp_double);
    return (stats_t){t[0], t[k / 2]};
}

static void report(const char *name, stats_t d, stats_t s, stats_t p, const char *check) {
    if (me != 0) return;
    double bytes = 8.0 * (double)n * (double)n, gb = bytes * 1e-9;
    printf("{\"bench\":\"io\",\"case\":\"%s\",\"ranks\":%d,\"threads\":%d,\"repeat\":%d,"
           "\"n\":%lld,\"tile\":%lld,\"bytes\":%.0f,\"dagr_s\":%.6f,\"dagr_median_s\":%.6f,"
           "\"dagr_GBps\":%.3f,\"serial_s\":%.6f,\"serial_GBps\":%.3f,\"posix_s\":%.6f,"
           "\"posix_GBps\":%.3f,\"vs_serial\":%.3f,\"vs_posix\":%.3f,\"check\":\"%s\"}\n",
           name, nranks, dagr_threads(ctx), repeat, (long long)n, (long long)tile, bytes, d.best,
           d.median, gb / d.best, s.best, gb / s.best, p.best, gb / p.best, s.best / d.best,
           p.best / d.best, check);
    fflush(stdout);
}

/* Rounds x 6 times (row-major) into 6 columns of at most 64 rounds; returns the rounds kept. */
static int columns(const double *t, double col[6][64], int rounds) {
    int k = rounds < 64 ? rounds : 64;
    for (int c = 0; c < 6; c++)
        for (int r = 0; r < k; r++)
            col[c][r] = t[r * 6 + c];
    return k;
}

/* The check: the max-norm of B - A (B is overwritten), 0 when they are equal. */
static double max_diff(const dagr_darray_t *A, dagr_darray_t *B) {
    double diff = -1;
    die(dagr_darray_axpby(-1.0, A, 1.0, B), "axpby");
    die(dagr_darray_norm(B, DAGR_NORM_MAX, &diff), "norm");
    return diff;
}

/* The checkpoint cases: dagr against a reference named ref, and POSIX. */
static void report_ckpt(const char *name, stats_t d, const char *ref, stats_t r, const char *pname,
                        stats_t p, const char *check) {
    if (me != 0) return;
    double gb = 8.0 * (double)n * (double)n * 1e-9;
    printf("{\"bench\":\"io\",\"case\":\"%s\",\"ranks\":%d,\"threads\":%d,\"repeat\":%d,"
           "\"n\":%lld,\"tile\":%lld,\"bytes\":%.0f,\"dagr_s\":%.6f,\"dagr_median_s\":%.6f,"
           "\"dagr_GBps\":%.3f,\"%s_GBps\":%.3f,\"%s_GBps\":%.3f,\"vs_%s\":%.3f,"
           "\"vs_%s\":%.3f,\"check\":\"%s\"}\n",
           name, nranks, dagr_threads(ctx), repeat, (long long)n, (long long)tile, gb * 1e9, d.best,
           d.median, gb / d.best, ref, gb / r.best, pname, gb / p.best, ref, r.best / d.best, pname,
           p.best / d.best, check);
    fflush(stdout);
}

static int parse_opts(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--n") && v)
            n = atoll(v), i++;
        else if (!strcmp(a, "--tile") && v)
            tile = atoll(v), i++;
        else if (!strcmp(a, "--repeat") && v)
            repeat = atoi(v), i++;
        else if (!strcmp(a, "--threads") && v)
            threads = atoi(v), i++;
        else if (!strcmp(a, "--dir") && v)
            dir = v, i++;
        else
            return -1;
    }
    return n > 0 && tile > 0 && repeat > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (parse_opts(argc, argv)) {
        fprintf(stderr, "usage: %s [--n N] [--tile T] [--repeat R] [--threads T] [--dir DIR]\n",
                argv[0]);
        return 2;
    }
    dagr_config_t cfg;
    dagr_config_init(&cfg);
    cfg.threads = threads;
    dagr_status_t st = dagr_init(&argc, &argv, &cfg, &ctx);
    if (st != DAGR_OK) {
        fprintf(stderr, "io_bench: dagr_init: %s (%s)\n", dagr_status_str(st), dagr_last_error());
        return 1;
    }
    comm = dagr_comm(ctx);
    me = dagr_rank(ctx);
    nranks = dagr_size(ctx);
    snprintf(h5path, sizeof h5path, "%s/io_bench_dagr.h5", dir);
    snprintf(serialpath, sizeof serialpath, "%s/io_bench_serial.h5", dir);
    snprintf(rawpath, sizeof rawpath, "%s/io_bench_posix.%d", dir, me);
    snprintf(ckptpath, sizeof ckptpath, "%s/io_bench.ckpt", dir);

    dagr_darray_t *A = NULL, *B = NULL, *C = NULL;
    die(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, tile, tile, dagr_grid_2d(0, 0), &A), "create");
    die(dagr_darray_create(ctx, DAGR_DOUBLE, n, n, tile, tile, dagr_grid_2d(0, 0), &C), "create");
    die(dagr_darray_random(A, 1), "random");
    die(dagr_wait_all(ctx), "wait");
    double *buf = me == 0 ? malloc((size_t)(n * n) * sizeof *buf) : NULL;
    size_t share = (size_t)(n * n / nranks) * sizeof(double);
    char *raw = malloc(share);
    if ((me == 0 && !buf) || !raw) die(DAGR_ERR_NOMEM, "buffers");
    memset(raw, 1, share);
    if (buf) memset(buf, 0, (size_t)(n * n) * sizeof *buf);

    double *ts = calloc((size_t)repeat * 6, sizeof *ts);
    for (int r = -1; r < repeat; r++) { /* round -1: warm-up */
        double d = dagr_save(A), s = serial_save(A, buf), p = posix_io(raw, share, 1, 0);
        double dl = dagr_load(&B), sl = serial_load(C, buf), pl = posix_io(raw, share, 0, 0);
        if (r < 0) continue;
        double *row = &ts[r * 6];
        row[0] = d, row[1] = s, row[2] = p, row[3] = dl, row[4] = sl, row[5] = pl;
    }
    double col[6][64];
    int k = columns(ts, col, repeat);
    double diff = max_diff(A, B);
    const char *check = diff == 0 ? "ok" : "loaded array differs from the saved one";
    report("save", stats_of(col[0], k), stats_of(col[1], k), stats_of(col[2], k), check);
    report("load", stats_of(col[3], k), stats_of(col[4], k), stats_of(col[5], k), check);

    /* Checkpoint and resume of A alone (B and C go), against dagr_darray_save and load of
     * the same array, and against POSIX with fsync (a checkpoint is synced to disk). */
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&C);
    double *tc = calloc((size_t)repeat * 6, sizeof *tc);
    for (int r = -1; r < repeat; r++) {
        dagr_darray_destroy(&B); /* A is the only live array at the checkpoint */
        sync(); /* the disk idle before each synced case: no write-back of earlier rounds */
        double c = dagr_ckpt(), s = dagr_save(A);
        sync();
        double p = posix_io(raw, share, 1, 1);
        die(dagr_darray_scale(A, 2.0), "scale"); /* resume must undo it */
        double rs = dagr_resume_time(), pl = posix_io(raw, share, 0, 0), l = dagr_load(&B);
        if (r < 0) continue;
        double *row = &tc[r * 6];
        row[0] = c, row[1] = s, row[2] = p, row[3] = rs, row[4] = l, row[5] = pl;
    }
    columns(tc, col, repeat);
    double diff2 = max_diff(A, B);
    const char *check2 = diff2 == 0 ? "ok" : "resumed array differs from the checkpointed one";
    report_ckpt("checkpoint", stats_of(col[0], k), "save", stats_of(col[1], k), "posix_fsync",
                stats_of(col[2], k), check2);
    report_ckpt("resume", stats_of(col[3], k), "load", stats_of(col[4], k), "posix",
                stats_of(col[5], k), check2);
    free(tc);
    diff = diff != 0 ? diff : diff2;

    if (me == 0) {
        remove(h5path);
        remove(serialpath);
        remove(ckptpath);
    }
    remove(rawpath);
    free(ts);
    free(buf);
    free(raw);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);
    dagr_darray_destroy(&C);
    die(dagr_finalize(&ctx), "dagr_finalize");
    return diff == 0 ? 0 : 1;
}
