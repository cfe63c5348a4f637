/* table_bench: DTable's operations on table_gen's CSV files, timed, for table_bench.sh to set
 * beside DuckDB's times on the same files (README.md here).
 *
 *   mpiexec.mpich -n 2 build/benchmarks/table_bench --trips trips.csv --dims dims.csv
 *       [--repeat R] [--partitions P] [--ops OP,OP,...] [--out DIR]
 *
 * The operations are those of benchmarks/duckdb/run.mjs, each materialised: the time runs
 * from the call to the return of dagr_dtable_nrows on its result (which waits for every task
 * that writes it), so it includes every partition being built, as DuckDB's CREATE TABLE AS:
 *   ingest_trips  read_csv of trips with the column types given
 *   ingest_dims   read_csv of dims
 *   filter        fare > 10 and (tip is null or tip < 5)
 *   groupby1      by key: sum(fare), mean(tip), count(*)
 *   groupby2      by key, cat: the same
 *   join          trips inner join dims on key
 *   sort          trips by fare
 *   write_csv     trips into one CSV file in --out DIR (every rank writing its part at once),
 *                 timed until dagr_wait_all returns (the file complete), as DuckDB's COPY TO
 *   save_h5       dagr_dtable_save of trips into --out DIR (dagr only: DuckDB has no HDF5)
 * One JSON line per operation on rank 0 ({"bench":"table","engine":"dagr","op",...,
 * "seconds","rows"}), the best of R runs, then a peak_rss line: the largest peak resident set
 * of one rank (MiB) and the in-memory size of the trips table per rank, whose ratio the
 * issue bounds (at most 3), and, under DAGR_MEMORY_LIMIT (which makes dagr count its data
 * buffers), the largest peak of one rank's data buffers (data_peak_mb; 0 without a limit),
 * and the largest peak of one rank's data pool in memory (pool_peak_mb: buffers in use,
 * free memory it keeps, pages blocks share).
 * --ops runs only the operations named (after the two ingests),
 * which shows the peak one operation reaches on its own. */
#include <dagr/dagr.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static dagr_ctx_t *ctx;
static int me;

static void die(const char *what) {
    fprintf(stderr, "table_bench: rank %d: %s: %s\n", me, what, dagr_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static double now(void) {
    return MPI_Wtime();
}

/* Times one operation: build() makes the table, nrows waits for it. */
typedef dagr_status_t (*build_fn)(dagr_dtable_t **out);
static dagr_dtable_t *trips, *dims;
static const char *trips_path, *dims_path;
static int partitions;
static const char *ops;     /* --ops: the operations to run, or NULL for all */
static const char *out_dir; /* --out: where write_csv writes (NULL: it is not run) */

/* Whether --ops names op (a whole item of the comma-separated list). */
static int wanted(const char *op) {
    if (!ops) return 1;
    size_t n = strlen(op);
    for (const char *p = ops; (p = strstr(p, op)) != NULL; p += n)
        if ((p == ops || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

static dagr_status_t ingest(const char *path, const dagr_coltype_t *types, int ncols,
                            dagr_dtable_t **out) {
    dagr_csv_opts_t o;
    dagr_csv_opts_init(&o);
    o.ncols = ncols;
    o.types = types;
    o.partitions = partitions;
    return dagr_dtable_read_csv(ctx, path, &o, out);
}
static dagr_status_t b_ingest_trips(dagr_dtable_t **out) {
    static const dagr_coltype_t ty[7] = {DAGR_COL_INT64,    DAGR_COL_INT64,   DAGR_COL_STRING,
                                         DAGR_COL_FLOAT64,  DAGR_COL_FLOAT64, DAGR_COL_FLOAT64,
                                         DAGR_COL_TIMESTAMP};
    return ingest(trips_path, ty, 7, out);
}
static dagr_status_t b_ingest_dims(dagr_dtable_t **out) {
    static const dagr_coltype_t ty[3] = {DAGR_COL_INT64, DAGR_COL_STRING, DAGR_COL_FLOAT64};
    return ingest(dims_path, ty, 3, out);
}
static dagr_status_t b_filter(dagr_dtable_t **out) {
    return dagr_dtable_filter(trips, "fare > 10 and (tip is null or tip < 5)", out);
}
static const dagr_agg_t aggs[3] = {
    {DAGR_AGG_SUM, "fare", NULL}, {DAGR_AGG_MEAN, "tip", NULL}, {DAGR_AGG_COUNT_ALL, NULL, NULL}};
static dagr_status_t b_groupby1(dagr_dtable_t **out) {
    const char *keys[1] = {"key"};
    return dagr_dtable_groupby_agg(trips, 1, keys, 3, aggs, out);
}
static dagr_status_t b_groupby2(dagr_dtable_t **out) {
    const char *keys[2] = {"key", "cat"};
    return dagr_dtable_groupby_agg(trips, 2, keys, 3, aggs, out);
}
static dagr_status_t b_join(dagr_dtable_t **out) {
    const char *k[1] = {"key"};
    return dagr_dtable_join(trips, dims, 1, k, k, NULL, out);
}
static dagr_status_t b_sort(dagr_dtable_t **out) {
    const char *k[1] = {"fare"};
    return dagr_dtable_sort(trips, 1, k, NULL, out);
}

/* write_csv of trips into out_dir/dagr_trips.csv (h5: dagr_dtable_save into
 * out_dir/dagr_trips.h5), complete when it returns; the file is removed afterwards
 * (untimed). */
static void timed_write(int repeat, bool h5) {
    char path[4096];
    snprintf(path, sizeof path, "%s/dagr_trips.%s", out_dir, h5 ? "h5" : "csv");
    int64_t rows = -1;
    if (dagr_dtable_nrows(trips, &rows) != DAGR_OK) die("write_csv");
    double best = 1e300;
    for (int r = 0; r < repeat; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        dagr_status_t st =
            h5 ? dagr_dtable_save(trips, path, "trips") : dagr_dtable_write_csv(trips, path, NULL);
        if (st != DAGR_OK || dagr_wait_all(ctx) != DAGR_OK) die(h5 ? "save" : "write_csv");
        double dt = now() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (dt < best) best = dt;
        MPI_Barrier(MPI_COMM_WORLD);
        if (me == 0) remove(path);
    }
    if (me == 0)
        printf("{\"bench\":\"table\",\"engine\":\"dagr\",\"op\":\"%s\",\"ranks\":%d,"
               "\"threads\":%d,\"repeat\":%d,\"rows\":%lld,\"seconds\":%.6f}\n",
               h5 ? "save_h5" : "write_csv", dagr_size(ctx), dagr_threads(ctx), repeat,
               (long long)rows, best);
    fflush(stdout);
}

/* The largest peak resident set of one rank so far, in MiB. Collective. */
static double peak_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mb = (double)ru.ru_maxrss / 1024.0, peak;
    MPI_Allreduce(&mb, &peak, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return peak;
}

/* Runs op `name` repeat times; keeps the last result in *keep (if keep) and reports the best. */
static void timed(const char *name, build_fn build, int repeat, dagr_dtable_t **keep) {
    double best = 1e300;
    int64_t rows = -1;
    for (int r = 0; r < repeat; r++) {
        dagr_dtable_t *t = NULL;
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now();
        if (build(&t) != DAGR_OK) die(name);
        if (dagr_dtable_nrows(t, &rows) != DAGR_OK) die(name);
        double dt = now() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (dt < best) best = dt;
        if (keep && r == repeat - 1)
            *keep = t;
        else
            dagr_dtable_destroy(&t);
    }
    double peak = peak_mb();
    if (me == 0)
        printf("{\"bench\":\"table\",\"engine\":\"dagr\",\"op\":\"%s\",\"ranks\":%d,\"threads\":%d,"
               "\"repeat\":%d,\"rows\":%lld,\"seconds\":%.6f,\"peak_mb_so_far\":%.1f}\n",
               name, dagr_size(ctx), dagr_threads(ctx), repeat, (long long)rows, best, peak);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int repeat = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--trips") && i + 1 < argc)
            trips_path = argv[++i];
        else if (!strcmp(argv[i], "--dims") && i + 1 < argc)
            dims_path = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--partitions") && i + 1 < argc)
            partitions = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
            ops = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out_dir = argv[++i];
    }
    if (!trips_path || !dims_path || repeat < 1) {
        fprintf(stderr, "usage: table_bench --trips PATH --dims PATH [--repeat R] "
                        "[--partitions P] [--ops OP,...] [--out DIR]\n");
        return 2;
    }
    if (dagr_init(&argc, &argv, NULL, &ctx) != DAGR_OK) return 1;
    me = dagr_rank(ctx);
    timed("ingest_trips", b_ingest_trips, repeat, &trips);
    timed("ingest_dims", b_ingest_dims, repeat, &dims);
    int64_t bytes = 0;
    if (dagr_dtable_nbytes(trips, &bytes) != DAGR_OK) die("nbytes");
    if (wanted("filter")) timed("filter", b_filter, repeat, NULL);
    if (wanted("groupby1")) timed("groupby1", b_groupby1, repeat, NULL);
    if (wanted("groupby2")) timed("groupby2", b_groupby2, repeat, NULL);
    if (wanted("join")) timed("join", b_join, repeat, NULL);
    if (wanted("sort")) timed("sort", b_sort, repeat, NULL);
    if (out_dir && wanted("write_csv")) timed_write(repeat, false);
    if (out_dir && wanted("save_h5")) timed_write(repeat, true);
    double peak = peak_mb();
    double per_rank = (double)bytes / dagr_size(ctx) / 1048576.0;
    /* With a memory limit dagr counts its data buffers: their peak shows how much of the
     * resident set is data and how much is the allocator's (freed memory it keeps). */
    dagr_memory_stats_t ms;
    double mem[2] = {0, 0}; /* data peak, pool peak */
    if (dagr_memory_stats(ctx, &ms) == DAGR_OK) {
        mem[0] = (double)ms.peak / 1048576.0;
        mem[1] = (double)ms.pool_peak_resident / 1048576.0;
    }
    MPI_Allreduce(MPI_IN_PLACE, mem, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (me == 0)
        printf("{\"bench\":\"table\",\"engine\":\"dagr\",\"op\":\"peak_rss\",\"ranks\":%d,"
               "\"mb\":%.1f,\"trips_mb_per_rank\":%.1f,\"peak_over_table\":%.2f,"
               "\"data_peak_mb\":%.1f,\"pool_peak_mb\":%.1f}\n",
               dagr_size(ctx), peak, per_rank, peak / per_rank, mem[0], mem[1]);
    dagr_dtable_destroy(&trips);
    dagr_dtable_destroy(&dims);
    dagr_finalize(&ctx);
    return 0;
}
