/* DTable output against SQLite, h5py and LAPACK: write_csv, save / load, to_darray.
 *
 * Usage: dtable_io NROWS PARTITIONS
 *
 * Rank 0 generates a trips CSV file (sqlcmp.h); every rank reads it into PARTITIONS
 * partitions (0: the default) and checks:
 *   - write_csv into one file and per partition, with and without header, delimiters ','
 *     and ';', null_text "" and "NA": the files read back with read_csv, and imported into
 *     sqlite3, give the original rows (sqlite3 on the original file); an empty table (some
 *     or all partitions empty) gives a header only; writing over a longer file leaves no tail;
 *     the errors (bad patterns, delimiters, null_text at the call; a file that cannot be
 *     created at the wait, naming it);
 *   - save / load: the table loaded back equals the original; h5py (Debian's python3) reads
 *     the file, checks the layout (column order attribute, uint8 bools, the timestamps' unit,
 *     variable-length UTF-8 strings, ".valid" companions) and writes the columns as CSV, which
 *     sqlite3 compares with the original; replacing a group, an empty table, a group h5py
 *     wrote (other integer and float widths, fixed-length strings, no "columns" attribute),
 *     and the errors (no file, no group, columns of different lengths);
 *   - to_darray: the numeric columns of the rows without nulls, gathered, equal the fetched
 *     values; a least-squares fit of fare on (1, tip, key) with dagr_gels agrees with LAPACK's
 *     dgels; a null is DAGR_ERR_ARG at the wait naming the column and row; call errors.
 *
 * Prints RANK r RESULT <name> ok|FAIL lines. */
#include "scenario.h"
#include "sqlcmp.h"

#include <lapacke.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int me;
static char dir[256], trips[300];
static int nparts;

static const char *trip_names[8] = {"id", "key", "cat", "fare", "tip", "flag", "ts", "note"};

static void result(const char *name, int ok) {
    int all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    sc_result(name, all, "partitions=%d", nparts);
}

static dagr_csv_opts_t ropts(void) {
    dagr_csv_opts_t o;
    dagr_csv_opts_init(&o);
    o.partitions = nparts;
    o.ncols = 8;
    o.types = sq_trips_types;
    return o;
}

/* sqlite3's rows of sql over one trips-like CSV file (rank 0). */
static int sql_rows(const char *file, const char *sql, sq_rows_t *out, const char *what) {
    const char *files[1] = {file}, *names[1] = {"trips"};
    int ncols[1] = {8};
    const dagr_coltype_t *types[1] = {sq_trips_types};
    char err[256];
    return SC_CHECK(sq_query(1, files, names, ncols, types, sql, 8, sq_trips_types, out, err) == 0,
                    "%s: %s", what, err);
}

/* t (trips' schema) fetched to rank 0 equals sqlite3's "SELECT * FROM trips" of the original. */
static int same_as_original(dagr_dtable_t *t, const char *what) {
    dagr_rows_t *r = NULL;
    dagr_status_t s = dagr_dtable_fetch(t, -1, 0, &r);
    if (!SC_CHECK(s == DAGR_OK, "%s: fetch: %s", what, dagr_last_error())) return 0;
    if (me != 0) return 1;
    int ok = SC_CHECK(dagr_rows_ncols(r) == 8, "%s: %d columns", what, dagr_rows_ncols(r));
    for (int j = 0; ok && j < 8; j++)
        ok &= SC_CHECK(strcmp(dagr_rows_colname(r, j), trip_names[j]) == 0 &&
                           dagr_rows_coltype(r, j) == sq_trips_types[j],
                       "%s: column %d is %s", what, j, dagr_rows_colname(r, j));
    sq_rows_t want, got;
    char why[512];
    if (ok && (ok = sql_rows(trips, "SELECT * FROM trips", &want, what))) {
        ok = SC_CHECK(sq_from_dagr(r, &got) == 0, "%s", what);
        if (ok) {
            ok = SC_CHECK(sq_compare(&got, &want, false, 0, why) == 0, "%s: %s", what, why);
            sq_rows_free(&got);
        }
        sq_rows_free(&want);
    }
    dagr_rows_free(&r);
    return ok;
}

/* sqlite3 on file (which has a header) equals sqlite3 on the original (rank 0). */
static int sqlite_same(const char *file, const char *what) {
    if (me != 0) return 1;
    sq_rows_t a, b;
    char why[512];
    int ok = sql_rows(file, "SELECT * FROM trips", &a, what);
    if (ok && (ok = sql_rows(trips, "SELECT * FROM trips", &b, what))) {
        ok = SC_CHECK(sq_compare(&a, &b, false, 0, why) == 0, "%s (sqlite3): %s", what, why);
        sq_rows_free(&b);
    }
    if (ok) sq_rows_free(&a);
    return ok;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 24);
    *len = buf ? fread(buf, 1, (1 << 24) - 1, f) : 0;
    if (buf) buf[*len] = 0;
    fclose(f);
    return buf;
}

/* ---- write_csv ---- */

static int write_and_read(dagr_dtable_t *t, const char *out, const dagr_csv_write_opts_t *w,
                          const dagr_csv_opts_t *r, const char *what, dagr_dtable_t **back) {
    int ok =
        SC_CHECK(dagr_dtable_write_csv(t, out, w) == DAGR_OK, "%s: %s", what, dagr_last_error());
    ok &= SC_CHECK(dagr_wait_all(ctx) == DAGR_OK, "%s: %s", what, dagr_last_error());
    *back = NULL;
    if (!ok) return 0;
    const char *rpath = out;
    char glob[400];
    if (w->per_partition) {
        snprintf(glob, sizeof glob, "%s/pp-*.csv", dir);
        rpath = glob;
    }
    ok &= SC_CHECK(dagr_dtable_read_csv(ctx, rpath, r, back) == DAGR_OK, "%s: read back: %s", what,
                   dagr_last_error());
    /* The read's tasks finish before anything writes over the file (read_csv maps it). */
    ok &= SC_CHECK(dagr_wait_all(ctx) == DAGR_OK, "%s: read back: %s", what, dagr_last_error());
    return ok;
}

static void csv_roundtrips(void) {
    dagr_csv_opts_t ro = ropts();
    dagr_dtable_t *t = NULL, *back = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &ro, &t));
    char out[400];

    /* One file, the defaults. */
    dagr_csv_write_opts_t w;
    dagr_csv_write_opts_init(&w);
    snprintf(out, sizeof out, "%s/one.csv", dir);
    int ok = write_and_read(t, out, &w, &ro, "one file", &back);
    ok = ok && same_as_original(back, "one file");
    ok &= sqlite_same(out, "one file");
    dagr_dtable_destroy(&back);
    result("csv_one_file", ok);

    /* Per partition, ';', no header, "NA" for nulls. */
    dagr_csv_write_opts_init(&w);
    w.per_partition = true;
    w.delim = ';';
    w.header = false;
    w.null_text = "NA";
    snprintf(out, sizeof out, "%s/pp-%%04d.csv", dir);
    dagr_csv_opts_t r2 = ro;
    const char *nulls[1] = {"NA"};
    r2.delim = ';';
    r2.header = false;
    r2.names = trip_names;
    r2.nulls = nulls;
    r2.nnulls = 1;
    ok = write_and_read(t, out, &w, &r2, "per partition", &back);
    ok = ok && same_as_original(back, "per partition");
    if (me == 0) { /* as many files as partitions, numbered */
        char f[400];
        int np = dagr_dtable_npartitions(t);
        snprintf(f, sizeof f, "%s/pp-%04d.csv", dir, np - 1);
        FILE *fp = fopen(f, "r");
        ok &= SC_CHECK(fp != NULL, "no file %s", f);
        if (fp) fclose(fp);
        snprintf(f, sizeof f, "%s/pp-%04d.csv", dir, np);
        fp = fopen(f, "r");
        ok &= SC_CHECK(fp == NULL, "a file %s too many", f);
        if (fp) fclose(fp);
    }
    dagr_dtable_destroy(&back);
    result("csv_per_partition", ok);

    /* One file, ';' with a header and "NA": read back, and through sqlite3 (which reads "NA"
     * as text, so only the read back is compared there). */
    dagr_csv_write_opts_init(&w);
    w.delim = ';';
    w.null_text = "NA";
    snprintf(out, sizeof out, "%s/semi.csv", dir);
    dagr_csv_opts_t r3 = ro;
    r3.delim = ';';
    r3.nulls = nulls;
    r3.nnulls = 1;
    ok = write_and_read(t, out, &w, &r3, "semicolon", &back);
    ok = ok && same_as_original(back, "semicolon");
    dagr_dtable_destroy(&back);
    result("csv_delim_null_text", ok);

    /* Empty partitions, then an empty table, written over the longer one.csv. */
    dagr_dtable_t *some = NULL, *none = NULL;
    SC_TRY(dagr_dtable_filter(t, "id % 5 = 0 and id < 40", &some));
    dagr_csv_write_opts_init(&w);
    snprintf(out, sizeof out, "%s/one.csv", dir);
    ok = write_and_read(some, out, &w, &ro, "sparse", &back);
    if (ok && me == 0) {
        sq_rows_t a, b;
        char why[512];
        ok = sql_rows(out, "SELECT * FROM trips", &a, "sparse");
        if (ok && (ok = sql_rows(trips, "SELECT * FROM trips WHERE id % 5 = 0 AND id < 40", &b,
                                 "sparse"))) {
            ok = SC_CHECK(sq_compare(&a, &b, true, 0, why) == 0, "sparse: %s", why);
            sq_rows_free(&b);
        }
        if (ok) sq_rows_free(&a);
    }
    dagr_dtable_destroy(&back);
    SC_TRY(dagr_dtable_filter(t, "fare < 0", &none));
    ok &= write_and_read(none, out, &w, &ro, "empty", &back);
    int64_t n = -1;
    ok &= SC_CHECK(back && dagr_dtable_nrows(back, &n) == DAGR_OK && n == 0, "empty: %lld rows",
                   (long long)n);
    if (me == 0) {
        size_t len = 0;
        char *txt = slurp(out, &len);
        ok &= SC_CHECK(txt && strcmp(txt, "id,key,cat,fare,tip,flag,ts,note\n") == 0,
                       "empty table wrote '%s'", txt ? txt : "(nothing)");
        free(txt);
    }
    dagr_dtable_destroy(&back);
    result("csv_empty", ok);

    /* Errors at the call, and at the wait. */
    dagr_csv_write_opts_init(&w);
    ok = SC_EXPECT_STATUS(dagr_dtable_write_csv(t, NULL, &w), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_write_csv(NULL, out, &w), DAGR_ERR_ARG);
    w.delim = '"';
    ok &= SC_EXPECT_STATUS(dagr_dtable_write_csv(t, out, &w), DAGR_ERR_ARG);
    w.delim = ',';
    w.null_text = "a,b";
    ok &= SC_EXPECT_STATUS(dagr_dtable_write_csv(t, out, &w), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "null_text") != NULL, "%s", dagr_last_error());
    w.null_text = "";
    w.per_partition = true;
    const char *bad[] = {"p.csv", "p-%d-%d.csv", "p-%s.csv", "p-%ld.csv", "p-%d%.csv"};
    for (int k = 0; k < 5; k++) {
        ok &= SC_EXPECT_STATUS(dagr_dtable_write_csv(t, bad[k], &w), DAGR_ERR_ARG);
        const char *pct_d = "exactly one %d";
        ok &= SC_CHECK(strstr(dagr_last_error(), pct_d) != NULL, "%s", dagr_last_error());
    }
    snprintf(out, sizeof out, "%s/pct-%%%%-%%03d.csv", dir); /* %% is fine */
    ok &= SC_CHECK(dagr_dtable_write_csv(some, out, &w) == DAGR_OK, "%s", dagr_last_error());
    ok &= SC_CHECK(dagr_wait_all(ctx) == DAGR_OK, "%s", dagr_last_error());
    if (me == 0) {
        char f[400];
        snprintf(f, sizeof f, "%s/pct-%%-000.csv", dir);
        FILE *fp = fopen(f, "r");
        ok &= SC_CHECK(fp != NULL, "no file %s", f);
        if (fp) fclose(fp);
    }
    w.per_partition = false;
    snprintf(out, sizeof out, "%s/no/such/dir/x.csv", dir);
    ok &= SC_CHECK(dagr_dtable_write_csv(t, out, &w) == DAGR_OK, "%s", dagr_last_error());
    ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_IO, "no/such/dir/x.csv", "unwritable");
    ok &= SC_CHECK(strstr(dagr_last_error(), "No such file") != NULL, "%s", dagr_last_error());
    result("csv_errors", ok);

    dagr_dtable_destroy(&some);
    dagr_dtable_destroy(&none);
    dagr_dtable_destroy(&t);
}

/* ---- save / load ---- */

static const char *py_check =
    "import h5py, csv, sys, datetime\n"
    "f = h5py.File(sys.argv[1], 'r'); g = f[sys.argv[2]]\n"
    "cols = [c.decode() if isinstance(c, bytes) else c for c in g.attrs['columns']]\n"
    "assert cols == ['id','key','cat','fare','tip','flag','ts','note'], cols\n"
    "assert g['flag'].dtype == 'uint8', g['flag'].dtype\n"
    "assert g['id'].dtype == 'int64' and g['fare'].dtype == 'float64'\n"
    "u = g['ts'].attrs['unit']; u = u.decode() if isinstance(u, bytes) else u\n"
    "assert u == 'us since 1970-01-01T00:00:00Z', u\n"
    "n = len(g['id'])\n"
    "assert h5py.check_string_dtype(g['cat'].dtype).encoding == 'utf-8'\n"
    "assert 'id.valid' not in g and (n < 100 or ('key.valid' in g and 'note.valid' in g))\n"
    "out = csv.writer(open(sys.argv[3], 'w', newline=''), lineterminator='\\n')\n"
    "out.writerow(cols)\n"
    "data = {c: g[c][()] for c in cols}\n"
    "valid = {c: (g[c + '.valid'][()] if c + '.valid' in g else None) for c in cols}\n"
    "def cell(c, i):\n"
    "    if valid[c] is not None and not valid[c][i]: return ''\n"
    "    v = data[c][i]\n"
    "    if c == 'flag': return 'true' if v else 'false'\n"
    "    if c == 'ts':\n"
    "        t = datetime.datetime(1970,1,1) + datetime.timedelta(microseconds=int(v))\n"
    "        return t.strftime('%Y-%m-%dT%H:%M:%SZ')\n"
    "    if c in ('cat', 'note'): return v.decode('utf-8') if isinstance(v, bytes) else v\n"
    "    if c in ('fare', 'tip'): return repr(float(v))\n"
    "    return str(int(v))\n"
    "for i in range(n): out.writerow([cell(c, i) for c in cols])\n"
    "print('h5py ok', n)\n";

static const char *py_other = "import h5py, numpy as np, sys\n"
                              "f = h5py.File(sys.argv[1], 'a')\n"
                              "g = f.create_group('other')\n"
                              "g['b_float'] = np.array([1.5, -2.25, 3.0], dtype='float32')\n"
                              "g['a_int'] = np.array([7, -8, 9], dtype='int32')\n"
                              "g['c_str'] = np.array([b'ab', b'', b'xyz'], dtype='S4')\n"
                              "g['d_bool'] = np.array([1, 0, 2], dtype='uint8')\n"
                              "g['d_bool.valid'] = np.array([1, 1, 0], dtype='uint8')\n"
                              "h = f.create_group('bad')\n"
                              "h['x'] = np.arange(3); h['y'] = np.arange(4)\n"
                              "k = f.create_group('cplx')\n"
                              "k['z'] = np.zeros((2, 2))\n";

static int run_py(const char *script, const char *a1, const char *a2, const char *a3) {
    char sp[400], cmd[1600];
    snprintf(sp, sizeof sp, "%s/check.py", dir);
    FILE *f = fopen(sp, "w");
    if (!f) return -1;
    fputs(script, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s '%s' '%s' '%s' >%s/py.out 2>&1", sp, a1, a2, a3,
             dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat %s/py.out", dir);
        if (system(cmd) != 0) return rc ? rc : -1;
    }
    return rc;
}

static void save_load(void) {
    dagr_csv_opts_t ro = ropts();
    dagr_dtable_t *t = NULL, *back = NULL, *some = NULL, *none = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &ro, &t));
    char h5[400], pycsv[400];
    snprintf(h5, sizeof h5, "%s/t.h5", dir);
    snprintf(pycsv, sizeof pycsv, "%s/py.csv", dir);

    int ok = SC_CHECK(dagr_dtable_save(t, h5, "trips") == DAGR_OK, "save: %s", dagr_last_error());
    ok &= SC_CHECK(dagr_dtable_load(ctx, h5, "trips", &back) == DAGR_OK, "load: %s",
                   dagr_last_error());
    ok = ok && same_as_original(back, "load");
    int64_t n = -1;
    ok &= SC_CHECK(back && dagr_dtable_nrows(back, &n) == DAGR_OK, "%s", dagr_last_error());
    dagr_dtable_destroy(&back);
    result("h5_roundtrip", ok);

    ok = 1;
    if (me == 0) {
        ok = SC_CHECK(run_py(py_check, h5, "trips", pycsv) == 0, "the h5py check failed");
        ok = ok && sqlite_same(pycsv, "h5py");
    }
    result("h5_h5py", ok);

    /* Replacing the group (nested path) with fewer rows; an empty table. */
    SC_TRY(dagr_dtable_filter(t, "id % 3 = 1", &some));
    SC_TRY(dagr_dtable_filter(t, "fare < 0", &none));
    ok = SC_CHECK(dagr_dtable_save(t, h5, "a/b") == DAGR_OK, "%s", dagr_last_error());
    ok &= SC_CHECK(dagr_dtable_save(some, h5, "a/b") == DAGR_OK, "%s", dagr_last_error());
    ok &= SC_CHECK(dagr_dtable_load(ctx, h5, "a/b", &back) == DAGR_OK, "%s", dagr_last_error());
    dagr_rows_t *r = NULL;
    ok &= SC_CHECK(back && dagr_dtable_fetch(back, -1, 0, &r) == DAGR_OK, "%s", dagr_last_error());
    if (ok && me == 0) {
        sq_rows_t got, want;
        char why[512];
        if ((ok = sql_rows(trips, "SELECT * FROM trips WHERE id % 3 = 1", &want, "replace"))) {
            ok = SC_CHECK(sq_from_dagr(r, &got) == 0, "replace");
            if (ok) ok = SC_CHECK(sq_compare(&got, &want, true, 0, why) == 0, "replace: %s", why);
            if (ok) sq_rows_free(&got);
            sq_rows_free(&want);
        }
    }
    dagr_rows_free(&r);
    dagr_dtable_destroy(&back);
    ok &= SC_CHECK(dagr_dtable_save(none, h5, "empty") == DAGR_OK, "%s", dagr_last_error());
    ok &= SC_CHECK(dagr_dtable_load(ctx, h5, "empty", &back) == DAGR_OK, "%s", dagr_last_error());
    n = -1;
    ok &= SC_CHECK(back && dagr_dtable_nrows(back, &n) == DAGR_OK && n == 0 &&
                       dagr_dtable_ncols(back) == 8 &&
                       strcmp(dagr_dtable_colname(back, 7), "note") == 0,
                   "empty: %lld rows", (long long)n);
    dagr_dtable_destroy(&back);
    result("h5_replace_empty", ok);

    /* A group another tool wrote. */
    MPI_Barrier(MPI_COMM_WORLD);
    ok = 1;
    if (me == 0) ok = SC_CHECK(run_py(py_other, h5, "", "") == 0, "h5py could not write");
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (ok)
        ok =
            SC_CHECK(dagr_dtable_load(ctx, h5, "other", &back) == DAGR_OK, "%s", dagr_last_error());
    if (ok) {
        const char *nm[4] = {"a_int", "b_float", "c_str", "d_bool"};
        dagr_coltype_t ty[4] = {DAGR_COL_INT64, DAGR_COL_FLOAT64, DAGR_COL_STRING, DAGR_COL_BOOL};
        for (int j = 0; j < 4; j++)
            ok &= SC_CHECK(dagr_dtable_ncols(back) == 4 &&
                               strcmp(dagr_dtable_colname(back, j), nm[j]) == 0 &&
                               dagr_dtable_coltype(back, j) == ty[j],
                           "other: column %d", j);
        ok &= SC_CHECK(dagr_dtable_fetch(back, -1, 0, &r) == DAGR_OK, "%s", dagr_last_error());
        if (ok && me == 0) {
            size_t l;
            ok &= SC_CHECK(dagr_rows_count(r) == 3, "%lld rows", (long long)dagr_rows_count(r));
            ok &= SC_CHECK(dagr_rows_int64(r, 0, 1) == -8 && dagr_rows_float64(r, 1, 1) == -2.25,
                           "numbers");
            const char *s = dagr_rows_string(r, 2, 2, &l);
            ok &= SC_CHECK(l == 3 && memcmp(s, "xyz", 3) == 0, "string '%.*s'", (int)l, s);
            dagr_rows_string(r, 2, 1, &l);
            ok &= SC_CHECK(l == 0 && dagr_rows_valid(r, 2, 1), "empty string");
            ok &= SC_CHECK(dagr_rows_bool(r, 3, 0) && !dagr_rows_bool(r, 3, 1) &&
                               !dagr_rows_valid(r, 3, 2),
                           "bools");
        }
        dagr_rows_free(&r);
    }
    dagr_dtable_destroy(&back);
    result("h5_other_writer", ok);

    /* Errors. */
    char nofile[400];
    snprintf(nofile, sizeof nofile, "%s/none.h5", dir);
    ok = SC_EXPECT_STATUS(dagr_dtable_load(ctx, nofile, "trips", &back), DAGR_ERR_IO);
    ok &= SC_EXPECT_STATUS(dagr_dtable_load(ctx, h5, "nope", &back), DAGR_ERR_FORMAT);
    ok &= SC_CHECK(strstr(dagr_last_error(), "no group 'nope'") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_load(ctx, h5, "bad", &back), DAGR_ERR_FORMAT);
    ok &= SC_CHECK(strstr(dagr_last_error(), "one length") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_load(ctx, h5, "cplx", &back), DAGR_ERR_FORMAT);
    ok &= SC_CHECK(strstr(dagr_last_error(), "not 1-D") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_load(ctx, h5, "trips/id", &back), DAGR_ERR_FORMAT);
    ok &= SC_EXPECT_STATUS(dagr_dtable_load(ctx, h5, NULL, &back), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_load(ctx, h5, "trips", NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_save(t, NULL, "x"), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_save(t, h5, "/"), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_save(t, h5, "trips/id"), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_save(t, trips, "x"), DAGR_ERR_FORMAT); /* not HDF5 */
    dagr_dtable_t *slash = NULL;
    SC_TRY(dagr_dtable_with_column(t, "a/b", "fare", &slash));
    ok &= SC_EXPECT_STATUS(dagr_dtable_save(slash, h5, "x"), DAGR_ERR_ARG);
    dagr_dtable_destroy(&slash);
    SC_TRY(dagr_dtable_with_column(t, "tip.valid", "fare", &slash));
    ok &= SC_EXPECT_STATUS(dagr_dtable_save(slash, h5, "x"), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "clash") != NULL, "%s", dagr_last_error());
    dagr_dtable_destroy(&slash);
    result("h5_errors", ok);

    dagr_dtable_destroy(&some);
    dagr_dtable_destroy(&none);
    dagr_dtable_destroy(&t);
}

/* ---- to_darray ---- */

static void to_darray(void) {
    dagr_csv_opts_t ro = ropts();
    dagr_dtable_t *t = NULL, *f = NULL, *w = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &ro, &t));
    SC_TRY(dagr_dtable_filter(t,
                              "key is not null and tip is not null and fare is not null and "
                              "flag is not null and ts is not null",
                              &f));
    SC_TRY(dagr_dtable_with_column(f, "one", "1.0", &w));
    const char *cols[6] = {"one", "tip", "key", "flag", "ts", "fare"};
    dagr_darray_t *A = NULL, *B = NULL, *X = NULL;
    int ok = SC_CHECK(
        dagr_dtable_to_darray(w, 5, cols, DAGR_DOUBLE, 16, 3, dagr_grid_2d(0, 0), &A) == DAGR_OK,
        "%s", dagr_last_error());
    dagr_rows_t *r = NULL;
    SC_TRY(dagr_dtable_fetch(w, -1, -1, &r));
    int64_t m = dagr_rows_count(r);
    ok &= SC_CHECK(A && dagr_darray_rows(A) == m && dagr_darray_cols(A) == 5, "shape");
    double *a = malloc((size_t)(m ? m : 1) * 6 * sizeof *a);
    if (ok)
        ok &= SC_CHECK(dagr_darray_gather(A, a, m ? m : 1, -1) == DAGR_OK, "%s", dagr_last_error());
    int jr[6];
    for (int c = 0; c < 6; c++)
        for (jr[c] = 0; strcmp(dagr_rows_colname(r, jr[c]), cols[c]) != 0; jr[c]++)
            ;
    for (int64_t i = 0; ok && i < m; i++)
        for (int c = 0; c < 5; c++) {
            double want;
            dagr_coltype_t ty = dagr_rows_coltype(r, jr[c]);
            want = ty == DAGR_COL_FLOAT64 ? dagr_rows_float64(r, jr[c], i)
                   : ty == DAGR_COL_BOOL  ? dagr_rows_bool(r, jr[c], i)
                                          : (double)dagr_rows_int64(r, jr[c], i);
            if (!SC_CHECK(a[i + c * m] == want, "A(%lld, %d) = %g, want %g", (long long)i, c,
                          a[i + c * m], want)) {
                ok = 0;
                break;
            }
        }
    result("to_darray_values", ok);
    dagr_darray_destroy(&A);

    /* fare ~ 1 + tip + key: dagr_gels against LAPACK's dgels. */
    ok = SC_CHECK(dagr_dtable_to_darray(w, 3, cols, DAGR_DOUBLE, 32, 32, dagr_grid_2d(0, 0), &A) ==
                      DAGR_OK,
                  "%s", dagr_last_error());
    ok &= SC_CHECK(dagr_dtable_to_darray(w, 1, cols + 5, DAGR_DOUBLE, 32, 32,
                                         dagr_grid_row_cyclic(), &B) == DAGR_OK,
                   "%s", dagr_last_error());
    double x[3] = {0, 0, 0};
    if (ok && m >= 3) {
        ok &= SC_CHECK(dagr_gels(A, B) == DAGR_OK, "%s", dagr_last_error());
        double *b = malloc((size_t)m * sizeof *b);
        ok &= SC_CHECK(dagr_darray_gather(B, b, m, -1) == DAGR_OK, "%s", dagr_last_error());
        for (int k = 0; k < 3; k++)
            x[k] = b[k];
        /* LAPACK on the same data. */
        double *aa = malloc((size_t)m * 3 * sizeof *aa), *bb = malloc((size_t)m * sizeof *bb);
        for (int64_t i = 0; i < m; i++) {
            aa[i] = 1.0;
            aa[i + m] = dagr_rows_float64(r, jr[1], i);
            aa[i + 2 * m] = (double)dagr_rows_int64(r, jr[2], i);
            bb[i] = dagr_rows_float64(r, jr[5], i);
        }
        int info = (int)LAPACKE_dgels(LAPACK_COL_MAJOR, 'N', (lapack_int)m, 3, 1, aa, (lapack_int)m,
                                      bb, (lapack_int)m);
        ok &= SC_CHECK(info == 0, "dgels info %d", info);
        double d = 0, nx = 0;
        for (int k = 0; k < 3; k++) {
            d += (x[k] - bb[k]) * (x[k] - bb[k]);
            nx += bb[k] * bb[k];
        }
        ok &= SC_CHECK(sqrt(d) <= 1e-9 * sqrt(nx) + 1e-12,
                       "dagr x = (%g, %g, %g), LAPACK (%g, %g, %g)", x[0], x[1], x[2], bb[0], bb[1],
                       bb[2]);
        free(aa);
        free(bb);
        free(b);
    }
    result("to_darray_gels", ok);
    dagr_darray_destroy(&A);
    dagr_darray_destroy(&B);

    /* Single precision, one tile per partition or less. */
    ok = SC_CHECK(dagr_dtable_to_darray(w, 2, cols + 1, DAGR_FLOAT, 5, 1, dagr_grid_row_cyclic(),
                                        &X) == DAGR_OK,
                  "%s", dagr_last_error());
    float *fl = malloc((size_t)(m ? m : 1) * 2 * sizeof *fl);
    ok &= SC_CHECK(dagr_darray_gather(X, fl, m ? m : 1, -1) == DAGR_OK, "%s", dagr_last_error());
    for (int64_t i = 0; ok && i < m; i++)
        ok &= SC_CHECK(fl[i] == (float)dagr_rows_float64(r, jr[1], i) &&
                           fl[i + m] == (float)dagr_rows_int64(r, jr[2], i),
                       "float row %lld", (long long)i);
    free(fl);
    dagr_darray_destroy(&X);
    result("to_darray_float", ok);

    /* A null tip: the error names a row whose tip is null (several tiles' tasks may find
     * one, and the first to fail, in time, is reported). */
    dagr_rows_t *all = NULL;
    SC_TRY(dagr_dtable_fetch(t, -1, -1, &all));
    int64_t first = -1;
    for (int64_t i = 0; i < dagr_rows_count(all) && first < 0; i++)
        if (!dagr_rows_valid(all, 4, i)) first = i;
    const char *tipc[2] = {"id", "tip"};
    ok = SC_CHECK(dagr_dtable_to_darray(t, 2, tipc, DAGR_DOUBLE, 64, 64, dagr_grid_2d(0, 0), &X) ==
                      DAGR_OK,
                  "%s", dagr_last_error());
    if (first >= 0) {
        const char *want = "column 'tip' is null at row ";
        ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_ARG, want, "null");
        const char *at = strstr(dagr_last_error(), want);
        long long row = at ? atoll(at + strlen(want)) : -1;
        ok &=
            SC_CHECK(row >= 0 && row < dagr_rows_count(all) && !dagr_rows_valid(all, 4, row),
                     "the error names row %lld, whose tip is not null: %s", row, dagr_last_error());
    }
    dagr_rows_free(&all);
    dagr_darray_destroy(&X);
    const char *strc[1] = {"cat"}, *unk[1] = {"nope"};
    ok &= SC_EXPECT_STATUS(
        dagr_dtable_to_darray(t, 1, strc, DAGR_DOUBLE, 8, 8, dagr_grid_2d(0, 0), &X), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "string") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(
        dagr_dtable_to_darray(t, 1, unk, DAGR_DOUBLE, 8, 8, dagr_grid_2d(0, 0), &X), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_dtable_to_darray(t, 0, tipc, DAGR_DOUBLE, 8, 8, dagr_grid_2d(0, 0), &X), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_dtable_to_darray(t, 1, tipc, DAGR_INT64, 8, 8, dagr_grid_2d(0, 0), &X), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_dtable_to_darray(t, 1, tipc, DAGR_DOUBLE, 0, 8, dagr_grid_2d(0, 0), &X), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_dtable_to_darray(t, 1, tipc, DAGR_DOUBLE, 8, 8, dagr_grid_2d(9, 9), &X), DAGR_ERR_ARG);
    result("to_darray_errors", ok);

    free(a);
    dagr_rows_free(&r);
    dagr_dtable_destroy(&w);
    dagr_dtable_destroy(&f);
    dagr_dtable_destroy(&t);
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    me = dagr_rank(ctx);
    sc_set_rank(me);
    int64_t nrows = argc > 1 ? atoll(argv[1]) : 1000;
    nparts = argc > 2 ? atoi(argv[2]) : 0;
    sq_scratch_dir(dir);
    snprintf(trips, sizeof trips, "%s/trips.csv", dir);
    if (me == 0 && sq_gen_trips(trips, nrows, 50, 1, false) != 0) sc_say("cannot write %s", trips);
    MPI_Barrier(MPI_COMM_WORLD);
    csv_roundtrips();
    save_load();
    to_darray();
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0 && !getenv("DTABLE_IO_KEEP")) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) sc_say("cannot remove %s", dir);
    }
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
