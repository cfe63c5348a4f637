/* DTable reading and row-wise operations against SQLite.
 *
 * Usage: dtable_read NROWS PARTITIONS
 *
 * Rank 0 generates trips CSV files (sqlcmp.h: nulls, skewed keys, unicode, quoted commas,
 * quotes and CR/LF inside quotes); every rank reads them with dagr_dtable_read_csv into
 * PARTITIONS partitions (0: the default) and checks, against sqlite3 on the same files:
 * the inferred schema, the whole table, filter, with_column (float, int, string and
 * timestamp expressions), select, head, map_column, a chain of them without waits, fetch to
 * every rank, several files through a glob, CRLF files, empty files; and the errors: bad
 * expressions and names at the call, malformed files (wrong field count, a bad int64, invalid
 * UTF-8, an unterminated quote) at the wait, with the file and line in the message.
 *
 * Prints RANK r RESULT <name> ok|FAIL lines. */
#include "scenario.h"
#include "sqlcmp.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int me;
static char dir[256], trips[300];
static int nparts;

static dagr_csv_opts_t opts(void) {
    dagr_csv_opts_t o;
    dagr_csv_opts_init(&o);
    o.partitions = nparts;
    return o;
}

/* Fetches t to rank 0 and compares it with sql over the trips file(s) given (named trips,
 * trips2, ...). */
static int same_as_sql(dagr_dtable_t *t, const char *sql, int nfiles, const char *const *files,
                       bool ordered, const char *what) {
    const char *names[4] = {"trips", "trips2", "trips3", "trips4"};
    int ncols[4] = {8, 8, 8, 8};
    const dagr_coltype_t *types[4] = {sq_trips_types, sq_trips_types, sq_trips_types,
                                      sq_trips_types};
    return sq_check_table(t, nfiles, files, names, ncols, types, sql, ordered, 1e-12, what);
}

/* Every rank agrees on one verdict (rank 0 compared). */
static void result(const char *name, int ok) {
    int all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    sc_result(name, all, "partitions=%d", nparts);
}

static void schema_and_all(void) {
    dagr_csv_opts_t o = opts();
    dagr_dtable_t *t = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &o, &t));
    int ok = SC_CHECK(dagr_dtable_ncols(t) == 8, "%d columns", dagr_dtable_ncols(t));
    const char *names[8] = {"id", "key", "cat", "fare", "tip", "flag", "ts", "note"};
    for (int j = 0; ok && j < 8; j++) {
        ok &= SC_CHECK(strcmp(dagr_dtable_colname(t, j), names[j]) == 0, "name %d", j);
        ok &= SC_CHECK(dagr_dtable_coltype(t, j) == sq_trips_types[j], "column %s is %s", names[j],
                       dagr_coltype_name(dagr_dtable_coltype(t, j)));
    }
    const char *files[1] = {trips};
    ok &= same_as_sql(t, "SELECT * FROM trips", 1, files, false, "all");
    int64_t n = -1;
    ok &= SC_CHECK(dagr_dtable_nrows(t, &n) == DAGR_OK && n > 0, "nrows %lld", (long long)n);
    result("read_all", ok);

    /* fetch of the first 5 rows on every rank: ids 0-4 in order. */
    dagr_rows_t *r = NULL;
    ok = SC_CHECK(dagr_dtable_fetch(t, 5, -1, &r) == DAGR_OK, "%s", dagr_last_error());
    ok &= SC_CHECK(r && dagr_rows_count(r) == (n < 5 ? n : 5), "fetched %lld",
                   (long long)dagr_rows_count(r));
    for (int64_t i = 0; ok && i < dagr_rows_count(r); i++)
        ok &= SC_CHECK(dagr_rows_int64(r, 0, i) == i, "row %lld has id %lld", (long long)i,
                       (long long)dagr_rows_int64(r, 0, i));
    dagr_rows_free(&r);
    result("fetch_all_ranks", ok);
    dagr_dtable_destroy(&t);
}

/* A column from a callback: fare * 2, null where fare is. */
static dagr_status_t double_fare(const dagr_dtable_part_t *p, void *out, uint8_t *valid,
                                 void *user) {
    int j = *(int *)user;
    const double *fare = p->values[j];
    for (int64_t i = 0; i < p->nrows; i++) {
        ((double *)out)[i] = fare[i] * 2;
        if (p->valid[j] && !(p->valid[j][i / 8] >> (i % 8) & 1))
            valid[i / 8] &= (uint8_t) ~(1u << (i % 8));
    }
    return DAGR_OK;
}

static void row_ops(void) {
    dagr_csv_opts_t o = opts();
    const char *files[1] = {trips};
    dagr_dtable_t *t = NULL, *f = NULL, *w = NULL, *s = NULL, *h = NULL, *m = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &o, &t));
    /* A chain without waits: filter -> with_column -> select. */
    SC_TRY(dagr_dtable_filter(t, "fare > 10 and (flag or tip is null)", &f));
    SC_TRY(dagr_dtable_with_column(f, "pct", "tip / fare * 100", &w));
    const char *sel[] = {"pct", "id", "cat"};
    SC_TRY(dagr_dtable_select(w, 3, sel, &s));
    int ok = same_as_sql(s,
                         "SELECT tip / fare * 100, id, cat FROM trips WHERE fare > 10 AND "
                         "(flag OR tip IS NULL)",
                         1, files, false, "chain");
    result("filter_with_select", ok);
    dagr_dtable_destroy(&w);
    dagr_dtable_destroy(&s);

    /* with_column: int arithmetic, strings, timestamps, replacing a column. */
    SC_TRY(dagr_dtable_with_column(t, "k2", "key * 2 + id % 7", &w));
    SC_TRY(dagr_dtable_with_column(w, "cat", "upper(cat)", &s));
    dagr_dtable_t *x = NULL, *y = NULL;
    SC_TRY(dagr_dtable_with_column(s, "late", "ts > ts('2024-07-01') and length(note) > 20", &x));
    SC_TRY(dagr_dtable_with_column(x, "ts2", "ts + 3600000000", &y));
    ok = same_as_sql(y,
                     "SELECT id, key, upper(cat), fare, tip, flag, ts, note, key * 2 + id % 7, "
                     "ts > 1719792000000000 AND length(note) > 20, ts + 3600000000 FROM trips",
                     1, files, false, "with_column");
    result("with_column", ok);
    dagr_dtable_destroy(&x);
    dagr_dtable_destroy(&y);

    /* Filters that empty every partition, or keep all rows. */
    dagr_dtable_t *none = NULL, *all = NULL;
    SC_TRY(dagr_dtable_filter(t, "fare < 0", &none));
    SC_TRY(dagr_dtable_filter(t, "id >= 0", &all));
    ok = same_as_sql(none, "SELECT * FROM trips WHERE fare < 0", 1, files, false, "empty");
    ok &= same_as_sql(all, "SELECT * FROM trips", 1, files, false, "keep all");
    int64_t n = -1;
    ok &= SC_CHECK(dagr_dtable_nrows(none, &n) == DAGR_OK && n == 0, "nrows %lld", (long long)n);
    result("filter_empty_and_full", ok);

    /* head: the first rows in file order; of an empty table, nothing. */
    SC_TRY(dagr_dtable_head(f, 7, &h));
    ok = same_as_sql(h,
                     "SELECT * FROM trips WHERE fare > 10 AND (flag OR tip IS NULL) ORDER BY id "
                     "LIMIT 7",
                     1, files, true, "head");
    dagr_dtable_destroy(&h);
    SC_TRY(dagr_dtable_head(none, 3, &h));
    ok &= same_as_sql(h, "SELECT * FROM trips WHERE 0", 1, files, true, "head of empty");
    result("head", ok);
    dagr_dtable_destroy(&h);

    /* map_column */
    int fare = dagr_dtable_colindex(t, "fare");
    SC_TRY(dagr_dtable_map_column(t, "fare2", DAGR_COL_FLOAT64, double_fare, &fare, &m));
    ok = same_as_sql(m, "SELECT *, fare * 2 FROM trips", 1, files, false, "map_column");
    result("map_column", ok);

    /* print: rank 0 writes an aligned table. */
    FILE *pf = tmpfile();
    ok = SC_CHECK(dagr_dtable_print(t, 3, pf) == DAGR_OK, "%s", dagr_last_error());
    if (me == 0 && pf) {
        char buf[4096];
        rewind(pf);
        size_t len = fread(buf, 1, sizeof buf - 1, pf);
        buf[len] = 0;
        ok &= SC_CHECK(strncmp(buf, "id", 2) == 0 && strstr(buf, "fare") && strstr(buf, "rows)"),
                       "printed: %s", buf);
    }
    if (pf) fclose(pf);
    result("print", ok);

    /* Errors at the call. */
    dagr_dtable_t *bad = NULL;
    ok = SC_EXPECT_STATUS(dagr_dtable_filter(t, "fair > 1", &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "unknown column 'fair'") != NULL, "%s",
                   dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_filter(t, "fare + 1", &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "not bool") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_filter(t, "fare > ", &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "at 7") != NULL, "%s", dagr_last_error());
    const char *dup[] = {"id", "id"}, *unk[] = {"nope"};
    ok &= SC_EXPECT_STATUS(dagr_dtable_select(t, 2, dup, &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_select(t, 1, unk, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "unknown column 'nope' (columns: id, key") != NULL,
                   "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_select(t, 0, dup, &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_with_column(t, "", "1", &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_with_column(t, "x", "cat > 3", &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_head(t, -1, &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(
        dagr_dtable_map_column(t, "s", DAGR_COL_STRING, double_fare, &fare, &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_filter(NULL, "true", &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(bad == NULL, "no table on error");
    result("call_errors", ok);
    dagr_dtable_destroy(&t);
    dagr_dtable_destroy(&f);
    dagr_dtable_destroy(&none);
    dagr_dtable_destroy(&all);
    dagr_dtable_destroy(&m);
}

static void many_files(void) {
    char t2[300], t3[300], empty[300], glob[300];
    snprintf(t2, sizeof t2, "%s/trips2.csv", dir);
    snprintf(t3, sizeof t3, "%s/trips3.csv", dir);
    snprintf(empty, sizeof empty, "%s/trips4.csv", dir);
    snprintf(glob, sizeof glob, "%s/trips*.csv", dir);
    if (me == 0) {
        sq_gen_trips(t2, 57, 5, 2, true); /* CRLF */
        sq_gen_trips(t3, 1, 5, 3, false);
        FILE *e = fopen(empty, "w"); /* a header only */
        fputs("id,key,cat,fare,tip,flag,ts,note\n", e);
        fclose(e);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dagr_csv_opts_t o = opts();
    dagr_dtable_t *t = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, glob, &o, &t));
    const char *files[4] = {trips, t2, t3, empty};
    int ok = same_as_sql(t,
                         "SELECT * FROM trips UNION ALL SELECT * FROM trips2 UNION ALL SELECT * "
                         "FROM trips3 UNION ALL SELECT * FROM trips4",
                         4, files, false, "glob");
    dagr_dtable_destroy(&t);
    /* A list of files, with the types given (the same as inferred) and names replaced. */
    const char *names[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    o.ncols = 8;
    o.types = sq_trips_types;
    o.names = names;
    const char *list[2] = {t2, t3};
    SC_TRY(dagr_dtable_read_csv_files(ctx, list, 2, &o, &t));
    ok &= SC_CHECK(strcmp(dagr_dtable_colname(t, 7), "h") == 0, "names given");
    const char *files2[2] = {t2, t3};
    ok &= same_as_sql(t, "SELECT * FROM trips UNION ALL SELECT * FROM trips2", 2, files2, false,
                      "list");
    dagr_dtable_destroy(&t);
    result("many_files", ok);

    /* Empty files: with the types, an empty table; without, an error. */
    char zero[300];
    snprintf(zero, sizeof zero, "%s/zero.csv", dir);
    if (me == 0) fclose(fopen(zero, "w"));
    MPI_Barrier(MPI_COMM_WORLD);
    o.names = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, zero, &o, &t));
    int64_t n = -1;
    ok = SC_CHECK(dagr_dtable_nrows(t, &n) == DAGR_OK && n == 0, "nrows %lld", (long long)n);
    ok &= SC_CHECK(dagr_dtable_ncols(t) == 8, "columns of an empty file");
    dagr_dtable_destroy(&t);
    dagr_csv_opts_t o2 = opts();
    ok &= SC_EXPECT_STATUS(dagr_dtable_read_csv(ctx, zero, &o2, &t), DAGR_ERR_FORMAT);
    ok &= SC_CHECK(strstr(dagr_last_error(), "is empty") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_read_csv(ctx, empty, &o2, &t), DAGR_OK); /* header only */
    ok &= SC_CHECK(dagr_dtable_nrows(t, &n) == DAGR_OK && n == 0, "nrows %lld", (long long)n);
    dagr_dtable_destroy(&t);
    result("empty_files", ok);
}

/* A malformed file: the wait fails with DAGR_ERR_FORMAT naming file and line. */
static int bad_file(const char *name, const char *text, bool typed, const char *want) {
    char path[300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (me == 0) {
        FILE *f = fopen(path, "w");
        fputs(text, f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dagr_csv_opts_t o = opts();
    dagr_coltype_t ty[3] = {DAGR_COL_INT64, DAGR_COL_STRING, DAGR_COL_FLOAT64};
    if (typed) {
        o.ncols = 3;
        o.types = ty;
    }
    dagr_dtable_t *t = NULL;
    dagr_status_t s = dagr_dtable_read_csv(ctx, path, &o, &t);
    int ok;
    if (s == DAGR_OK) {
        ok = SC_EXPECT_WAIT(ctx, DAGR_ERR_FORMAT, want, name);
        dagr_dtable_destroy(&t);
    } else {
        ok = SC_CHECK(s == DAGR_ERR_FORMAT && strstr(dagr_last_error(), want), "%s: %s", name,
                      dagr_last_error());
    }
    return ok;
}

static void malformed(void) {
    /* Enough good lines that the bad one lies in a later range. */
    char text[8192];
    size_t at = (size_t)snprintf(text, sizeof text, "a,b,c\n");
    for (int i = 0; i < 200; i++)
        at += (size_t)snprintf(text + at, sizeof text - at, "%d,\"x\ny\",1.5\n", i);
    char t1[9000], t2[9000], t3[9000], t4[9000];
    snprintf(t1, sizeof t1, "%s7,too,3.5,extra\n8,ok,2\n", text);
    snprintf(t2, sizeof t2, "%sabc,x,1\n", text);
    snprintf(t3, sizeof t3, "%s9,caf\xc3,1\n", text);
    snprintf(t4, sizeof t4, "%s9,\"open,1\n", text);
    int ok = bad_file("fields.csv", t1, true, "fields.csv: line 402 (byte");
    ok &= bad_file("fields.csv", t1, true, "4 fields, expected 3");
    ok &= bad_file("int.csv", t2, true, "int.csv: line 402");
    ok &= bad_file("int.csv", t2, true, "column 0 ('a'): 'abc' is not an int64");
    ok &= bad_file("utf8.csv", t3, true, "utf8.csv: line 402");
    ok &= bad_file("utf8.csv", t3, true, "invalid UTF-8");
    ok &= bad_file("quote.csv", t4, true, "quote.csv: line 402");
    ok &= bad_file("quote.csv", t4, false, "quote.csv");
    dagr_dtable_t *t = NULL;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing.csv", dir);
    ok &= SC_EXPECT_STATUS(dagr_dtable_read_csv(ctx, missing, NULL, &t), DAGR_ERR_IO);
    ok &= SC_CHECK(strstr(dagr_last_error(), "missing.csv") != NULL, "%s", dagr_last_error());
    snprintf(missing, sizeof missing, "%s/nothing*.csv", dir);
    ok &= SC_EXPECT_STATUS(dagr_dtable_read_csv(ctx, missing, NULL, &t), DAGR_ERR_ARG);
    dagr_csv_opts_t o = opts();
    o.delim = '"';
    ok &= SC_EXPECT_STATUS(dagr_dtable_read_csv(ctx, trips, &o, &t), DAGR_ERR_ARG);
    o = opts();
    o.ncols = 2;
    o.types = sq_trips_types;
    ok &= SC_EXPECT_STATUS(dagr_dtable_read_csv(ctx, trips, &o, &t), DAGR_ERR_FORMAT);
    ok &= SC_CHECK(strstr(dagr_last_error(), "has 8 columns but the options give 2") != NULL, "%s",
                   dagr_last_error());
    result("malformed", ok);
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
    schema_and_all();
    row_ops();
    many_files();
    malformed();
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) sc_say("cannot remove %s", dir);
    }
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
