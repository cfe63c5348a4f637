/* dagr_dtable_sort against SQLite's ORDER BY ... NULLS LAST.
 *
 * Usage: dtable_sort NROWS PARTITIONS
 *
 * Rank 0 generates a trips CSV file (sqlcmp.h: nulls in every column, key 0 in half the
 * rows, unicode strings, negative zeros); every rank reads it into PARTITIONS partitions (0:
 * the default) and sorts it; rank 0 fetches the result (in partition order, so partition p's
 * last row must not come after partition p + 1's first) and compares it row for row with
 * sqlite3's rows for the same ORDER BY with NULLS LAST and the id (the row's position) as
 * the last key: so every tie must keep its input order (stability). Checked: one float key
 * both ways, the skewed int key (and that its partitions stay balanced), string keys (the
 * generated unicode ones, and long strings sharing prefixes past 32 bytes), timestamps,
 * bools, several keys in mixed directions, a key named twice, -0.0 = 0.0, NaN and infinities
 * (SQLite has none: checked against the documented order), a sort of a sort, an empty table,
 * partitions left empty by a filter, one partition, more partitions than rows, and the
 * errors at the call.
 *
 * Prints RANK r RESULT <name> ok|FAIL lines. */
#include "scenario.h"
#include "sqlcmp.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dagr_ctx_t *ctx;
static int me, nranks;
static char dir[256], trips[300];
static int nparts;
static int64_t nrows;

static dagr_dtable_t *read_file(const char *path, int parts, int ncols,
                                const dagr_coltype_t *types) {
    dagr_csv_opts_t o;
    dagr_csv_opts_init(&o);
    o.partitions = parts;
    o.ncols = ncols;
    o.types = types;
    dagr_dtable_t *t = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, path, &o, &t));
    return t;
}

/* Fetches t to rank 0 and compares it, in order, with sql over `path` (table `name`). */
static int same_as_sql_on(dagr_dtable_t *t, const char *path, const char *name, int ncols,
                          const dagr_coltype_t *types, const char *sql, const char *what) {
    const char *files[1] = {path}, *names[1] = {name};
    const dagr_coltype_t *tys[1] = {types};
    return sq_check_table(t, 1, files, names, &ncols, tys, sql, true, 0, what);
}

static int same_as_sql(dagr_dtable_t *t, const char *sql, const char *what) {
    return same_as_sql_on(t, trips, "trips", 8, sq_trips_types, sql, what);
}

/* Every rank agrees on one verdict (rank 0 compared). */
static void result(const char *name, int ok) {
    int all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    sc_result(name, all, "rows=%lld partitions=%d", (long long)nrows, nparts);
}

/* Sorts t by keys (desc may be NULL) and compares with "SELECT * FROM trips [where] ORDER BY
 * order"; the result's partition count and schema must be t's. */
static int sorted_as(dagr_dtable_t *t, int nkeys, const char *const *keys, const bool *desc,
                     const char *where, const char *order, const char *what) {
    dagr_dtable_t *s = NULL;
    if (!SC_CHECK(dagr_dtable_sort(t, nkeys, keys, desc, &s) == DAGR_OK, "%s: %s", what,
                  dagr_last_error()))
        return 0;
    int ok = SC_CHECK(dagr_dtable_npartitions(s) == dagr_dtable_npartitions(t) &&
                          dagr_dtable_ncols(s) == dagr_dtable_ncols(t),
                      "%s: %d partitions, %d columns", what, dagr_dtable_npartitions(s),
                      dagr_dtable_ncols(s));
    for (int j = 0; ok && j < dagr_dtable_ncols(t); j++)
        ok &= SC_CHECK(strcmp(dagr_dtable_colname(s, j), dagr_dtable_colname(t, j)) == 0 &&
                           dagr_dtable_coltype(s, j) == dagr_dtable_coltype(t, j),
                       "%s: column %d", what, j);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT * FROM trips %s ORDER BY %s", where, order);
    ok &= same_as_sql(s, sql, what);
    dagr_dtable_destroy(&s);
    return ok;
}

static void single_keys(void) {
    dagr_dtable_t *t = read_file(trips, nparts, 0, NULL);
    const char *fare[] = {"fare"}, *key[] = {"key"}, *cat[] = {"cat"}, *ts[] = {"ts"},
               *flag[] = {"flag"}, *tip[] = {"tip"}, *note[] = {"note"}, *id[] = {"id"};
    bool up[1] = {false}, down[1] = {true};
    int ok = sorted_as(t, 1, fare, NULL, "", "fare NULLS LAST, id", "fare asc");
    ok &= sorted_as(t, 1, fare, up, "", "fare NULLS LAST, id", "fare asc (flags)");
    result("float_asc", ok);
    result("float_desc", sorted_as(t, 1, fare, down, "", "fare DESC NULLS LAST, id", "fare desc"));
    ok = sorted_as(t, 1, key, NULL, "", "key NULLS LAST, id", "key asc");
    ok &= sorted_as(t, 1, key, down, "", "key DESC NULLS LAST, id", "key desc");
    result("int_skewed_stable", ok);
    ok = sorted_as(t, 1, cat, NULL, "", "cat NULLS LAST, id", "cat asc");
    ok &= sorted_as(t, 1, note, down, "", "note DESC NULLS LAST, id", "note desc");
    result("string", ok);
    ok = sorted_as(t, 1, ts, down, "", "ts DESC NULLS LAST, id", "ts desc");
    ok &= sorted_as(t, 1, ts, NULL, "", "ts NULLS LAST, id", "ts asc");
    result("timestamp", ok);
    ok = sorted_as(t, 1, flag, NULL, "", "flag NULLS LAST, id", "flag asc");
    ok &= sorted_as(t, 1, flag, down, "", "flag DESC NULLS LAST, id", "flag desc");
    result("bool", ok);
    /* -0.0 ties with 0.0: those rows keep their input order. */
    ok = sorted_as(t, 1, tip, NULL, "", "tip NULLS LAST, id", "tip asc");
    ok &= sorted_as(t, 1, id, down, "", "id DESC", "id desc");
    result("negative_zero_and_unique", ok);
    dagr_dtable_destroy(&t);
}

static void multi_keys(void) {
    dagr_dtable_t *t = read_file(trips, nparts, 0, NULL);
    const char *k3[] = {"cat", "flag", "fare"}, *k2[] = {"key", "ts"}, *twice[] = {"fare", "fare"};
    bool d3[] = {false, true, false}, d2[] = {true, false}, dt[] = {true, false};
    int ok =
        sorted_as(t, 3, k3, d3, "", "cat NULLS LAST, flag DESC NULLS LAST, fare NULLS LAST, id",
                  "cat,flag,fare");
    ok &= sorted_as(t, 2, k2, d2, "", "key DESC NULLS LAST, ts NULLS LAST, id", "key desc, ts");
    ok &= sorted_as(t, 3, k3, NULL, "", "cat NULLS LAST, flag NULLS LAST, fare NULLS LAST, id",
                    "all ascending");
    /* The first occurrence of a key decides; the second changes nothing. */
    ok &= sorted_as(t, 2, twice, dt, "", "fare DESC NULLS LAST, id", "fare twice");
    result("multi_key", ok);

    /* A sort of a sorted table is stable over the first order: cat, then key. */
    dagr_dtable_t *s1 = NULL, *s2 = NULL;
    const char *key[] = {"key"}, *cat[] = {"cat"};
    SC_TRY(dagr_dtable_sort(t, 1, key, NULL, &s1));
    SC_TRY(dagr_dtable_sort(s1, 1, cat, NULL, &s2));
    dagr_dtable_destroy(&s1); /* s2's tasks still run */
    ok = same_as_sql(s2, "SELECT * FROM trips ORDER BY cat NULLS LAST, key NULLS LAST, id",
                     "sort of a sort");
    dagr_dtable_destroy(&s2);
    result("sort_of_sort", ok);
    dagr_dtable_destroy(&t);
}

/* The rows of each partition of t, summed over the ranks into counts[0, nparts). */
static int64_t *g_counts;
static dagr_status_t count_rows(const dagr_dtable_part_t *p, void *out, uint8_t *valid,
                                void *user) {
    (void)valid;
    (void)user;
    g_counts[p->index] = p->nrows;
    memset(out, 0, (size_t)p->nrows * 8);
    return DAGR_OK;
}
static void part_rows(dagr_dtable_t *t, int64_t *counts) {
    int np = dagr_dtable_npartitions(t);
    int64_t *mine = calloc((size_t)np, sizeof *mine);
    g_counts = mine;
    dagr_dtable_t *m = NULL;
    SC_TRY(dagr_dtable_map_column(t, "_n", DAGR_COL_INT64, count_rows, NULL, &m));
    int64_t n;
    SC_TRY(dagr_dtable_nrows(m, &n));
    MPI_Allreduce(mine, counts, np, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    dagr_dtable_destroy(&m);
    free(mine);
}

/* Key 0 holds half the rows: rows of equal keys spread over destinations (ties broken by
 * position), so no partition gets much more than its share. The sample is every row when
 * partitions hold fewer than 256 rows; else about 256 per destination. */
static void balance(void) {
    dagr_dtable_t *t = read_file(trips, nparts, 0, NULL), *s = NULL;
    const char *key[] = {"key"};
    SC_TRY(dagr_dtable_sort(t, 1, key, NULL, &s));
    int np = dagr_dtable_npartitions(s);
    int64_t *c = calloc((size_t)np, sizeof *c), sum = 0, max = 0;
    part_rows(s, c);
    for (int p = 0; p < np; p++) {
        sum += c[p];
        max = c[p] > max ? c[p] : max;
    }
    int64_t share = (nrows + np - 1) / np;
    int ok = SC_CHECK(sum == nrows, "%lld rows in the partitions", (long long)sum);
    ok &= SC_CHECK(max <= share + share / 3 + 2, "largest partition %lld rows, share %lld",
                   (long long)max, (long long)share);
    free(c);
    dagr_dtable_destroy(&s);
    dagr_dtable_destroy(&t);
    result("skewed_balanced", ok);
}

/* NaN, infinities and zeros (SQLite has no NaN): id % 7 gives NaN, +inf, -inf, 1.5, -0.0,
 * 0.0, null. Ascending: -inf, the zeros (tied), 1.5, +inf, NaN, nulls; descending: NaN,
 * +inf, 1.5, the zeros, -inf, nulls; ties in id order. */
static dagr_status_t special(const dagr_dtable_part_t *p, void *out, uint8_t *valid, void *user) {
    (void)user;
    const int64_t *id = p->values[0];
    const double v[6] = {NAN, INFINITY, -INFINITY, 1.5, -0.0, 0.0};
    for (int64_t i = 0; i < p->nrows; i++) {
        int k = (int)(id[i] % 7);
        ((double *)out)[i] = k < 6 ? v[k] : 0;
        if (k == 6) valid[i / 8] &= (uint8_t) ~(1u << (i % 8));
    }
    return DAGR_OK;
}
static int special_class(int64_t id, bool desc) {
    static const int asc[7] = {4, 3, 0, 2, 1, 1, 5}, dsc[7] = {0, 1, 4, 2, 3, 3, 5};
    return desc ? dsc[id % 7] : asc[id % 7];
}
static void nan_order(void) {
    dagr_dtable_t *t = read_file(trips, nparts, 0, NULL), *x = NULL;
    SC_TRY(dagr_dtable_map_column(t, "x", DAGR_COL_FLOAT64, special, NULL, &x));
    int ok = 1;
    for (int d = 0; d < 2; d++) {
        bool desc[2] = {d == 1, false};
        const char *keys[] = {"x"};
        dagr_dtable_t *s = NULL;
        SC_TRY(dagr_dtable_sort(x, 1, keys, desc, &s));
        dagr_rows_t *r = NULL;
        SC_TRY(dagr_dtable_fetch(s, -1, 0, &r));
        if (me == 0) {
            int64_t n = dagr_rows_count(r);
            ok &= SC_CHECK(n == nrows, "%lld rows", (long long)n);
            for (int64_t i = 1; ok && i < n; i++) {
                int64_t a = dagr_rows_int64(r, 0, i - 1), b = dagr_rows_int64(r, 0, i);
                int ca = special_class(a, d), cb = special_class(b, d);
                ok &= SC_CHECK(ca < cb || (ca == cb && a < b), "desc %d: id %lld before id %lld", d,
                               (long long)a, (long long)b);
            }
        }
        dagr_rows_free(&r);
        dagr_dtable_destroy(&s);
    }
    dagr_dtable_destroy(&x);
    dagr_dtable_destroy(&t);
    result("nan_inf_order", ok);
}

/* Long strings sharing prefixes (past the 8-byte steps and the 32 bytes where the merge sort
 * takes over), strings that are prefixes of others, multi-byte UTF-8. */
static void long_strings(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/strs.csv", dir);
    static const dagr_coltype_t types[2] = {DAGR_COL_INT64, DAGR_COL_STRING};
    if (me == 0) {
        FILE *f = fopen(path, "w");
        fputs("id,s\n", f);
        sc_rng_t g = {7};
        static const char *const pre[] = {"",
                                          "abcdefgh",
                                          "abcdefghabcdefghabcdefghabcdefgh",
                                          "abcdefghabcdefghabcdefghabcdefghabcdefgh",
                                          "é東京",
                                          "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"};
        static const char *const suf[] = {"", "a", "b", "ab", "ba", "é", "😀", "aaaaaaaaa"};
        int64_t n = nrows / 2 + 3;
        for (int64_t i = 0; i < n; i++) {
            fprintf(f, "%lld,", (long long)i);
            if (sc_below(&g, 20) == 0) {
                fputc('\n', f); /* null */
                continue;
            }
            char s[200];
            snprintf(s, sizeof s, "%s%s%s", pre[sc_below(&g, 6)], suf[sc_below(&g, 8)],
                     suf[sc_below(&g, 8)]);
            fprintf(f, "%s\n", s[0] ? s : "x");
        }
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dagr_dtable_t *t = read_file(path, nparts, 2, types), *s = NULL;
    const char *k[] = {"s"};
    bool d[] = {true};
    int ok = 1;
    SC_TRY(dagr_dtable_sort(t, 1, k, NULL, &s));
    ok &= same_as_sql_on(s, path, "strs", 2, types, "SELECT * FROM strs ORDER BY s NULLS LAST, id",
                         "strings asc");
    dagr_dtable_destroy(&s);
    SC_TRY(dagr_dtable_sort(t, 1, k, d, &s));
    ok &= same_as_sql_on(s, path, "strs", 2, types,
                         "SELECT * FROM strs ORDER BY s DESC NULLS LAST, id", "strings desc");
    dagr_dtable_destroy(&s);
    dagr_dtable_destroy(&t);
    result("long_strings", ok);
}

static void shapes(void) {
    dagr_dtable_t *t = read_file(trips, nparts, 0, NULL);
    const char *fare[] = {"fare"}, *k2[] = {"cat", "ts"};
    bool down[] = {true, false};
    /* Empty: every row filtered out. */
    dagr_dtable_t *none = NULL, *part = NULL, *h = NULL;
    SC_TRY(dagr_dtable_filter(t, "fare < 0", &none));
    int ok = sorted_as(none, 1, fare, NULL, "WHERE fare < 0", "fare", "empty");
    ok &= sorted_as(none, 2, k2, down, "WHERE fare < 0", "cat", "empty, two keys");
    result("empty_table", ok);
    /* The later partitions emptied by a filter, the first ones full. */
    char pred[64], where[80];
    snprintf(pred, sizeof pred, "id < %lld", (long long)(nrows / 5));
    snprintf(where, sizeof where, "WHERE %s", pred);
    SC_TRY(dagr_dtable_filter(t, pred, &part));
    ok = sorted_as(part, 1, fare, down, where, "fare DESC NULLS LAST, id", "empty partitions");
    ok &= sorted_as(part, 2, k2, down, where, "cat DESC NULLS LAST, ts NULLS LAST, id",
                    "empty partitions, two keys");
    result("empty_partitions", ok);
    /* One partition (head's, on rank 0). */
    SC_TRY(dagr_dtable_head(t, nrows / 2, &h));
    snprintf(where, sizeof where, "WHERE id < %lld", (long long)(nrows / 2));
    ok = SC_CHECK(dagr_dtable_npartitions(h) == 1, "head has %d partitions",
                  dagr_dtable_npartitions(h));
    ok &=
        sorted_as(h, 2, k2, down, where, "cat DESC NULLS LAST, ts NULLS LAST, id", "one partition");
    result("one_partition", ok);
    dagr_dtable_destroy(&none);
    dagr_dtable_destroy(&part);
    dagr_dtable_destroy(&h);
    dagr_dtable_destroy(&t);

    /* More partitions than rows: 3 rows in 8 partitions; and a file of no row. */
    char small[300];
    snprintf(small, sizeof small, "%s/small.csv", dir);
    if (me == 0) sq_gen_trips(small, 3, 5, 9, false);
    MPI_Barrier(MPI_COMM_WORLD);
    t = read_file(small, 8, 8, sq_trips_types);
    dagr_dtable_t *s = NULL;
    const char *k3[] = {"fare", "key", "note"};
    SC_TRY(dagr_dtable_sort(t, 3, k3, NULL, &s));
    ok = SC_CHECK(dagr_dtable_npartitions(s) == 8, "%d partitions", dagr_dtable_npartitions(s));
    ok &= same_as_sql_on(s, small, "trips", 8, sq_trips_types,
                         "SELECT * FROM trips ORDER BY fare NULLS LAST, key NULLS LAST, note "
                         "NULLS LAST, id",
                         "3 rows in 8 partitions");
    int64_t n = -1;
    ok &= SC_CHECK(dagr_dtable_nrows(s, &n) == DAGR_OK && n == 3, "nrows %lld", (long long)n);
    dagr_dtable_destroy(&s);
    dagr_dtable_destroy(&t);
    result("more_partitions_than_rows", ok);
}

static void errors(void) {
    dagr_dtable_t *t = read_file(trips, nparts, 0, NULL), *bad = NULL;
    const char *unk[] = {"fare", "fair"}, *one[] = {"fare"}, *nul[] = {NULL};
    int ok = SC_EXPECT_STATUS(dagr_dtable_sort(t, 2, unk, NULL, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "unknown column 'fair' (columns: id, key") != NULL,
                   "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_sort(t, 0, one, NULL, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "nkeys (0)") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_sort(t, -1, one, NULL, &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_sort(t, 1000, one, NULL, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), "at most 256") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_sort(t, 1, NULL, NULL, &bad), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_sort(t, 1, nul, NULL, &bad), DAGR_ERR_ARG);
    ok &=
        SC_CHECK(strstr(dagr_last_error(), "column name is NULL") != NULL, "%s", dagr_last_error());
    ok &= SC_EXPECT_STATUS(dagr_dtable_sort(t, 1, one, NULL, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_sort(NULL, 1, one, NULL, &bad), DAGR_ERR_ARG);
    ok &= SC_CHECK(bad == NULL, "no table on error");
    /* The context still works after the errors. */
    ok &= sorted_as(t, 1, one, NULL, "", "fare NULLS LAST, id", "after errors");
    dagr_dtable_destroy(&t);
    result("call_errors", ok);
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    me = dagr_rank(ctx);
    nranks = dagr_size(ctx);
    sc_set_rank(me);
    nrows = argc > 1 ? atoll(argv[1]) : 1000;
    nparts = argc > 2 ? atoi(argv[2]) : 0;
    sq_scratch_dir(dir);
    snprintf(trips, sizeof trips, "%s/trips.csv", dir);
    if (me == 0 && sq_gen_trips(trips, nrows, 20, 1, false) != 0) sc_say("cannot write %s", trips);
    MPI_Barrier(MPI_COMM_WORLD);
    single_keys();
    multi_keys();
    balance();
    nan_order();
    long_strings();
    shapes();
    errors();
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) sc_say("cannot remove %s", dir);
    }
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
