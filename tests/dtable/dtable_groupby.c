/* DTable group-by against SQLite.
 *
 * Usage: dtable_groupby NROWS PARTITIONS
 *
 * Rank 0 generates a trips CSV file (sqlcmp.h: nulls in every column, key 0 holding half the
 * rows, unicode and quoted strings, -0.0 tips); every rank reads it into PARTITIONS partitions
 * (0: the default) and checks dagr_dtable_groupby_agg against sqlite3's GROUP BY on the same
 * file: one int64 key, two keys (int64, string), a string key, a bool key, a timestamp key
 * (nearly one group per row), a float key (-0.0 and 0.0 one group), groups whose values are
 * all null, an empty table (the schema and no row), partitions emptied by a filter, no
 * aggregate at all, every aggregate (several COUNT_DISTINCT at once), default and given result
 * names, int64 sums that overflow (null) or overflow only on the way (exact), a chain read ->
 * filter -> group-by -> filter without waits, an input whose reading fails (the error at the
 * wait), and the argument errors.
 *
 * Float sums and means are compared within a relative 1e-9: dagr adds each partition's rows
 * in order, then the partitions' sums in another order than SQLite, which adds every row in
 * one pass; for the non-negative summands used here (fare, tip + 10: no cancellation) the
 * two differ by at most n * 2^-53 relatively (about 1e-12 for these sizes).
 *
 * Prints RANK r RESULT <name> ok|FAIL lines. */
#include "scenario.h"
#include "sqlcmp.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-9

static dagr_ctx_t *ctx;
static int me;
static char dir[256], trips[300];
static int nparts;
static int64_t nrows;

static dagr_csv_opts_t opts(void) {
    dagr_csv_opts_t o;
    dagr_csv_opts_init(&o);
    o.partitions = nparts;
    return o;
}

/* Fetches t to rank 0 and compares it, unordered, with sql over the trips file. */
static int same_as_sql(dagr_dtable_t *t, const char *sql, const char *what) {
    const char *names[1] = {"trips"}, *files[1] = {trips};
    int ncols[1] = {8};
    const dagr_coltype_t *types[1] = {sq_trips_types};
    return sq_check_table(t, 1, files, names, ncols, types, sql, false, RTOL, what);
}

/* Every rank agrees on one verdict (rank 0 compared). */
static void result(const char *name, int ok) {
    int all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    sc_result(name, all, "partitions=%d", nparts);
}

/* Whether t's schema is exactly these names and types. */
static int schema_is(const dagr_dtable_t *t, int n, const char *const *names,
                     const dagr_coltype_t *types) {
    int ok = SC_CHECK(dagr_dtable_ncols(t) == n, "%d columns, not %d", dagr_dtable_ncols(t), n);
    for (int j = 0; ok && j < n; j++) {
        ok &= SC_CHECK(strcmp(dagr_dtable_colname(t, j), names[j]) == 0,
                       "column %d is '%s', not '%s'", j, dagr_dtable_colname(t, j), names[j]);
        ok &= SC_CHECK(dagr_dtable_coltype(t, j) == types[j], "column %s is %s, not %s", names[j],
                       dagr_coltype_name(dagr_dtable_coltype(t, j)), dagr_coltype_name(types[j]));
    }
    return ok;
}

static dagr_dtable_t *read_trips(void) {
    dagr_csv_opts_t o = opts();
    dagr_dtable_t *t = NULL, *t10 = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &o, &t));
    /* tip + 10 is positive: its sums cannot cancel (see the top comment). */
    SC_TRY(dagr_dtable_with_column(t, "tip10", "tip + 10", &t10));
    dagr_dtable_destroy(&t);
    return t10;
}

/* Every aggregate, default names. */
static const dagr_agg_t every[] = {
    {DAGR_AGG_SUM, "fare", NULL},
    {DAGR_AGG_COUNT_ALL, NULL, NULL},
    {DAGR_AGG_COUNT, "tip", NULL},
    {DAGR_AGG_MEAN, "tip10", NULL},
    {DAGR_AGG_MIN, "cat", NULL},
    {DAGR_AGG_MAX, "ts", NULL},
    {DAGR_AGG_COUNT_DISTINCT, "cat", NULL},
    {DAGR_AGG_SUM, "id", NULL},
    {DAGR_AGG_MIN, "fare", NULL},
    {DAGR_AGG_MAX, "note", NULL},
    {DAGR_AGG_MIN, "ts", NULL},
    {DAGR_AGG_COUNT_DISTINCT, "tip", NULL},
    {DAGR_AGG_MEAN, "id", NULL},
    {DAGR_AGG_MAX, "fare", NULL},
    {DAGR_AGG_MIN, "id", NULL},
    {DAGR_AGG_COUNT, "flag", NULL},
};
#define NEVERY ((int)(sizeof every / sizeof *every))
static const char *const every_names[] = {"sum_fare",
                                          "count",
                                          "count_tip",
                                          "mean_tip10",
                                          "min_cat",
                                          "max_ts",
                                          "count_distinct_cat",
                                          "sum_id",
                                          "min_fare",
                                          "max_note",
                                          "min_ts",
                                          "count_distinct_tip",
                                          "mean_id",
                                          "max_fare",
                                          "min_id",
                                          "count_flag"};
static const dagr_coltype_t every_types[] = {
    DAGR_COL_FLOAT64, DAGR_COL_INT64,     DAGR_COL_INT64,     DAGR_COL_FLOAT64,
    DAGR_COL_STRING,  DAGR_COL_TIMESTAMP, DAGR_COL_INT64,     DAGR_COL_INT64,
    DAGR_COL_FLOAT64, DAGR_COL_STRING,    DAGR_COL_TIMESTAMP, DAGR_COL_INT64,
    DAGR_COL_FLOAT64, DAGR_COL_FLOAT64,   DAGR_COL_INT64,     DAGR_COL_INT64};
#define EVERY_SQL                                                                                  \
    "sum(fare), count(*), count(tip), avg(tip + 10), min(cat), max(ts), count(DISTINCT cat), "     \
    "sum(id), min(fare), max(note), min(ts), count(DISTINCT tip), avg(id), max(fare), min(id), "   \
    "count(flag)"

/* Group-by on the keys named with every aggregate, against SQLite (where: a filter, or ""). */
static int every_agg(dagr_dtable_t *t, int nkeys, const char *const *keys,
                     const dagr_coltype_t *ktypes, const char *where, const char *what) {
    dagr_dtable_t *g = NULL;
    dagr_status_t s = dagr_dtable_groupby_agg(t, nkeys, keys, NEVERY, every, &g);
    if (!SC_CHECK(s == DAGR_OK, "%s: %s", what, dagr_last_error())) return 0;
    const char *names[64];
    dagr_coltype_t types[64];
    char klist[256] = "";
    for (int k = 0; k < nkeys; k++) {
        names[k] = keys[k];
        types[k] = ktypes[k];
        snprintf(klist + strlen(klist), sizeof klist - strlen(klist), "%s%s", k ? ", " : "",
                 keys[k]);
    }
    for (int a = 0; a < NEVERY; a++) {
        names[nkeys + a] = every_names[a];
        types[nkeys + a] = every_types[a];
    }
    int ok = schema_is(g, nkeys + NEVERY, names, types);
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s, " EVERY_SQL " FROM trips %s GROUP BY %s", klist, where,
             klist);
    ok &= same_as_sql(g, sql, what);
    dagr_dtable_destroy(&g);
    return ok;
}

static void keys_of_each_type(void) {
    dagr_dtable_t *t = read_trips();
    const char *k1[] = {"key"}, *k2[] = {"key", "cat"}, *ks[] = {"cat"}, *kb[] = {"flag"},
               *kt[] = {"ts"}, *kf[] = {"tip"};
    const dagr_coltype_t t1[] = {DAGR_COL_INT64}, t2[] = {DAGR_COL_INT64, DAGR_COL_STRING},
                         ts[] = {DAGR_COL_STRING}, tb[] = {DAGR_COL_BOOL},
                         tt[] = {DAGR_COL_TIMESTAMP}, tf[] = {DAGR_COL_FLOAT64};
    /* key 0 holds half the rows: the skewed group. */
    result("one_key", every_agg(t, 1, k1, t1, "", "key"));
    result("two_keys", every_agg(t, 2, k2, t2, "", "key, cat"));
    result("string_key", every_agg(t, 1, ks, ts, "", "cat"));
    result("bool_key", every_agg(t, 1, kb, tb, "", "flag"));
    result("timestamp_key", every_agg(t, 1, kt, tt, "", "ts"));
    result("float_key", every_agg(t, 1, kf, tf, "", "tip"));
    /* Reversed key order, and a key that is also aggregated. */
    const char *k3[] = {"cat", "flag", "key"};
    const dagr_coltype_t t3[] = {DAGR_COL_STRING, DAGR_COL_BOOL, DAGR_COL_INT64};
    int ok = every_agg(t, 3, k3, t3, "", "cat, flag, key");
    dagr_agg_t self[] = {{DAGR_AGG_COUNT_DISTINCT, "key", NULL},
                         {DAGR_AGG_MIN, "key", "lo"},
                         {DAGR_AGG_COUNT, "key", "n"}};
    dagr_dtable_t *g = NULL;
    SC_TRY(dagr_dtable_groupby_agg(t, 1, k1, 3, self, &g));
    ok &= same_as_sql(
        g, "SELECT key, count(DISTINCT key), min(key), count(key) FROM trips GROUP BY key",
        "key aggregated");
    dagr_dtable_destroy(&g);
    result("three_keys_and_key_aggregated", ok);
    dagr_dtable_destroy(&t);
}

static void nulls_and_empty(void) {
    dagr_dtable_t *t = read_trips(), *f = NULL, *g = NULL;
    const char *k1[] = {"key"}, *k2[] = {"key", "cat"};
    const dagr_coltype_t t1[] = {DAGR_COL_INT64}, t2[] = {DAGR_COL_INT64, DAGR_COL_STRING};

    /* Groups whose values are all null: sums, means, min/max null; counts 0. */
    SC_TRY(dagr_dtable_filter(t, "fare is null and tip is null", &f));
    int ok = every_agg(f, 1, k1, t1, "WHERE fare IS NULL AND tip IS NULL", "all-null values");
    dagr_dtable_destroy(&f);
    SC_TRY(dagr_dtable_filter(t, "key is null", &f));
    ok &= every_agg(f, 2, k2, t2, "WHERE key IS NULL", "null keys");
    dagr_dtable_destroy(&f);
    result("null_groups", ok);

    /* An empty table: no row, the schema all the same. */
    SC_TRY(dagr_dtable_filter(t, "fare < 0", &f));
    ok = every_agg(f, 2, k2, t2, "WHERE fare < 0", "empty");
    SC_TRY(dagr_dtable_groupby_agg(f, 1, k1, NEVERY, every, &g));
    int64_t n = -1;
    ok &= SC_CHECK(dagr_dtable_nrows(g, &n) == DAGR_OK && n == 0, "nrows %lld", (long long)n);
    ok &= SC_CHECK(dagr_dtable_npartitions(g) == dagr_dtable_npartitions(f), "partitions");
    dagr_dtable_destroy(&g);
    dagr_dtable_destroy(&f);
    result("empty_table", ok);

    /* Partitions emptied by a filter (the middle of the file), and tiny groups. */
    char pred[128];
    snprintf(pred, sizeof pred, "id < 40 or id >= %lld", (long long)(nrows - 25));
    SC_TRY(dagr_dtable_filter(t, pred, &f));
    char where[160];
    snprintf(where, sizeof where, "WHERE id < 40 OR id >= %lld", (long long)(nrows - 25));
    ok = every_agg(f, 2, k2, t2, where, "empty partitions");
    dagr_dtable_destroy(&f);
    result("empty_partitions", ok);

    /* No aggregate: the distinct keys. */
    const char *kd[] = {"flag", "cat"};
    SC_TRY(dagr_dtable_groupby_agg(t, 2, kd, 0, NULL, &g));
    const char *dn[] = {"flag", "cat"};
    const dagr_coltype_t dt[] = {DAGR_COL_BOOL, DAGR_COL_STRING};
    ok = schema_is(g, 2, dn, dt);
    ok &= same_as_sql(g, "SELECT DISTINCT flag, cat FROM trips", "no aggregate");
    dagr_dtable_destroy(&g);
    result("no_aggregates", ok);
    dagr_dtable_destroy(&t);
}

/* Names given with 'as', and a chain without waits: read -> filter -> group -> filter. */
static void names_and_chain(void) {
    dagr_csv_opts_t o = opts();
    dagr_dtable_t *t = NULL, *f = NULL, *g = NULL, *h = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, trips, &o, &t));
    SC_TRY(dagr_dtable_filter(t, "fare > 20 and cat is not null", &f));
    const char *keys[] = {"cat", "flag"};
    dagr_agg_t aggs[] = {
        {DAGR_AGG_SUM, "fare", "total"},
        {DAGR_AGG_COUNT_ALL, NULL, "nrow"},
        {DAGR_AGG_MAX, "fare", "count"}, /* "count" is free: no COUNT_ALL default */
        {DAGR_AGG_COUNT_DISTINCT, "key", "nkey"}};
    SC_TRY(dagr_dtable_groupby_agg(f, 2, keys, 4, aggs, &g));
    SC_TRY(dagr_dtable_filter(g, "nrow > 3 and nkey >= 2", &h));
    const char *names[] = {"cat", "flag", "total", "nrow", "count", "nkey"};
    const dagr_coltype_t types[] = {DAGR_COL_STRING, DAGR_COL_BOOL,    DAGR_COL_FLOAT64,
                                    DAGR_COL_INT64,  DAGR_COL_FLOAT64, DAGR_COL_INT64};
    int ok = schema_is(h, 6, names, types);
    ok &= same_as_sql(h,
                      "SELECT * FROM (SELECT cat, flag, sum(fare) AS total, count(*) AS nrow, "
                      "max(fare), count(DISTINCT key) AS nkey FROM trips WHERE fare > 20 AND cat "
                      "IS NOT NULL GROUP BY cat, flag) WHERE nrow > 3 AND nkey >= 2",
                      "chain");
    /* A group-by of a group-by's result. */
    dagr_dtable_t *gg = NULL;
    const char *k2[] = {"flag"};
    dagr_agg_t a2[] = {{DAGR_AGG_SUM, "nrow", NULL}, {DAGR_AGG_COUNT_ALL, NULL, "groups"}};
    SC_TRY(dagr_dtable_groupby_agg(g, 1, k2, 2, a2, &gg));
    ok &= same_as_sql(gg,
                      "SELECT flag, sum(n), count(*) FROM (SELECT cat, flag, count(*) AS n FROM "
                      "trips WHERE fare > 20 AND cat IS NOT NULL GROUP BY cat, flag) GROUP BY "
                      "flag",
                      "group of groups");
    dagr_dtable_destroy(&gg);
    dagr_dtable_destroy(&t);
    dagr_dtable_destroy(&f);
    dagr_dtable_destroy(&g);
    dagr_dtable_destroy(&h);
    result("names_and_chain", ok);
}

/* int64 sums: exact whatever the order; null only when the total does not fit. SQLite stops
 * with "integer overflow" there, so the expected values are written here. */
static void int_overflow(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/big.csv", dir);
    if (me == 0) {
        FILE *f = fopen(path, "w");
        fputs("g,v\n", f);
        /* Enough rows that every partition gets some of each group. */
        for (int r = 0; r < 40; r++) {
            fputs("1,9223372036854775807\n", f);  /* 40 * max: overflows */
            fputs("2,9223372036854775807\n", f);  /* + max, - max: 0 */
            fputs("2,-9223372036854775807\n", f); /* (overflows on the way, in some orders) */
            fputs("3,-9223372036854775808\n", f); /* 40 * min: overflows */
            fprintf(f, "4,%s\n", r == 0 ? "-9223372036854775808" : "");
            fputs("5,\n", f); /* no value: null sum */
        }
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dagr_csv_opts_t o = opts();
    dagr_dtable_t *t = NULL, *g = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, path, &o, &t));
    const char *keys[] = {"g"};
    dagr_agg_t aggs[] = {{DAGR_AGG_SUM, "v", NULL},
                         {DAGR_AGG_MEAN, "v", NULL},
                         {DAGR_AGG_MIN, "v", NULL},
                         {DAGR_AGG_MAX, "v", NULL},
                         {DAGR_AGG_COUNT, "v", NULL}};
    SC_TRY(dagr_dtable_groupby_agg(t, 1, keys, 5, aggs, &g));
    dagr_rows_t *r = NULL;
    int ok = SC_CHECK(dagr_dtable_fetch(g, -1, -1, &r) == DAGR_OK, "%s", dagr_last_error());
    ok &= SC_CHECK(dagr_rows_count(r) == 5, "%lld groups", (long long)dagr_rows_count(r));
    for (int64_t i = 0; ok && i < dagr_rows_count(r); i++) {
        int64_t k = dagr_rows_int64(r, 0, i);
        bool sv = dagr_rows_valid(r, 1, i), mv = dagr_rows_valid(r, 2, i);
        int64_t sum = sv ? dagr_rows_int64(r, 1, i) : 0;
        double mean = mv ? dagr_rows_float64(r, 2, i) : 0;
        int64_t cnt = dagr_rows_int64(r, 5, i);
        switch (k) {
        case 1:
            ok &= SC_CHECK(!sv && mv && mean == 9223372036854775807.0 && cnt == 40,
                           "group 1: sum %s, mean %g, count %lld", sv ? "set" : "null", mean,
                           (long long)cnt);
            ok &= SC_CHECK(dagr_rows_int64(r, 3, i) == INT64_MAX &&
                               dagr_rows_int64(r, 4, i) == INT64_MAX,
                           "group 1 min/max");
            break;
        case 2:
            ok &= SC_CHECK(sv && sum == 0 && mv && mean == 0 && cnt == 80,
                           "group 2: sum %lld, mean %g", (long long)sum, mean);
            ok &= SC_CHECK(dagr_rows_int64(r, 3, i) == -INT64_MAX &&
                               dagr_rows_int64(r, 4, i) == INT64_MAX,
                           "group 2 min/max");
            break;
        case 3:
            ok &= SC_CHECK(!sv && mv && mean == -9223372036854775808.0, "group 3: sum %s",
                           sv ? "set" : "null");
            break;
        case 4:
            ok &= SC_CHECK(sv && sum == INT64_MIN && cnt == 1, "group 4: sum %lld", (long long)sum);
            break;
        case 5:
            ok &= SC_CHECK(!sv && !mv && !dagr_rows_valid(r, 3, i) && !dagr_rows_valid(r, 4, i) &&
                               cnt == 0,
                           "group 5: no value");
            break;
        default:
            ok &= SC_CHECK(false, "group %lld", (long long)k);
        }
    }
    dagr_rows_free(&r);
    dagr_dtable_destroy(&g);
    dagr_dtable_destroy(&t);
    result("int64_overflow", ok);
}

/* A malformed input: the group-by inserts its tasks, the wait reports the reader's error. */
static void input_error(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    if (me == 0) {
        FILE *f = fopen(path, "w");
        fputs("a,b\n", f);
        for (int i = 0; i < 300; i++)
            fprintf(f, "%d,%d\n", i % 7, i);
        fputs("x,1\n", f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    dagr_csv_opts_t o = opts();
    dagr_coltype_t ty[2] = {DAGR_COL_INT64, DAGR_COL_INT64};
    o.ncols = 2;
    o.types = ty;
    dagr_dtable_t *t = NULL, *g = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, path, &o, &t));
    const char *keys[] = {"a"};
    dagr_agg_t aggs[] = {{DAGR_AGG_SUM, "b", NULL}};
    int ok = SC_EXPECT_STATUS(dagr_dtable_groupby_agg(t, 1, keys, 1, aggs, &g), DAGR_OK);
    ok &= SC_EXPECT_WAIT(ctx, DAGR_ERR_FORMAT, "bad.csv", "bad input");
    dagr_dtable_destroy(&g);
    dagr_dtable_destroy(&t);
    result("input_error", ok);
}

/* Refused at the call with DAGR_ERR_ARG and a message naming the problem. */
static int refused(dagr_dtable_t *t, int nkeys, const char *const *keys, int naggs,
                   const dagr_agg_t *aggs, const char *has) {
    dagr_dtable_t *g = NULL;
    int ok =
        SC_EXPECT_STATUS(dagr_dtable_groupby_agg(t, nkeys, keys, naggs, aggs, &g), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), has) != NULL, "wanted '%s' in: %s", has,
                   dagr_last_error());
    ok &= SC_CHECK(g == NULL, "no table on error");
    return ok;
}

static void call_errors(void) {
    dagr_dtable_t *t = read_trips(), *g = NULL;
    const char *k1[] = {"key"}, *kbad[] = {"kee"}, *kdup[] = {"key", "key"}, *knull[] = {NULL};
    dagr_agg_t sum_cat[] = {{DAGR_AGG_SUM, "cat", NULL}};
    dagr_agg_t mean_ts[] = {{DAGR_AGG_MEAN, "ts", NULL}};
    dagr_agg_t sum_flag[] = {{DAGR_AGG_SUM, "flag", NULL}};
    dagr_agg_t min_flag[] = {{DAGR_AGG_MAX, "flag", NULL}};
    dagr_agg_t unknown[] = {{DAGR_AGG_COUNT, "fair", NULL}};
    dagr_agg_t twice[] = {{DAGR_AGG_SUM, "fare", NULL}, {DAGR_AGG_SUM, "fare", NULL}};
    dagr_agg_t as_key[] = {{DAGR_AGG_COUNT_ALL, NULL, "key"}};
    dagr_agg_t all_col[] = {{DAGR_AGG_COUNT_ALL, "fare", NULL}};
    dagr_agg_t no_col[] = {{DAGR_AGG_MIN, NULL, NULL}};
    dagr_agg_t bad_op[] = {{(dagr_agg_op_t)42, "fare", NULL}};
    dagr_agg_t empty_as[] = {{DAGR_AGG_SUM, "fare", ""}};
    int ok = refused(t, 1, kbad, 0, NULL, "unknown column 'kee' (columns: id, key");
    ok &= refused(t, 1, k1, 1, unknown, "unknown column 'fair'");
    ok &= refused(t, 1, k1, 1, sum_cat, "sum of 'cat', a string column");
    ok &= refused(t, 1, k1, 1, mean_ts, "mean of 'ts', a timestamp column");
    ok &= refused(t, 1, k1, 1, sum_flag, "sum of 'flag', a bool column");
    ok &= refused(t, 1, k1, 1, min_flag, "max of 'flag', a bool column");
    ok &= refused(t, 1, k1, 2, twice, "two columns named 'sum_fare'");
    ok &= refused(t, 1, k1, 1, as_key, "two columns named 'key'");
    ok &= refused(t, 2, kdup, 0, NULL, "two columns named 'key'");
    ok &= refused(t, 1, k1, 1, all_col, "count_all counts rows and takes no column");
    ok &= refused(t, 1, k1, 1, no_col, "min needs a column");
    ok &= refused(t, 1, k1, 1, bad_op, "unknown op 42");
    ok &= refused(t, 1, k1, 1, empty_as, "is empty");
    ok &= refused(t, 0, k1, 0, NULL, "nkeys is 0");
    ok &= refused(t, 1, k1, -1, NULL, "naggs is -1");
    ok &= refused(t, 1, k1, 1, NULL, "aggs is NULL");
    ok &= refused(t, 1, knull, 0, NULL, "a column name is NULL");
    ok &= refused(t, 1, NULL, 0, NULL, "keys or out is NULL");
    const char *many[65];
    for (int k = 0; k < 65; k++)
        many[k] = "key";
    ok &= refused(t, 65, many, 0, NULL, "nkeys is 65 (1 to 64 keys)");
    ok &= SC_EXPECT_STATUS(dagr_dtable_groupby_agg(t, 1, k1, 0, NULL, NULL), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_groupby_agg(NULL, 1, k1, 0, NULL, &g), DAGR_ERR_ARG);
    ok &= SC_CHECK(g == NULL, "no table on error");
    /* Names too long for a task's arguments. */
    static char longname[3000];
    memset(longname, 'x', sizeof longname - 1);
    dagr_agg_t longs[] = {{DAGR_AGG_SUM, "fare", longname}, {DAGR_AGG_SUM, "id", longname + 1}};
    ok &= refused(t, 1, k1, 2, longs, "argument bytes");
    /* The table stays usable after the errors. */
    dagr_agg_t fine[] = {{DAGR_AGG_COUNT_ALL, NULL, NULL}};
    SC_TRY(dagr_dtable_groupby_agg(t, 1, k1, 1, fine, &g));
    ok &= same_as_sql(g, "SELECT key, count(*) FROM trips GROUP BY key", "after errors");
    dagr_dtable_destroy(&g);
    dagr_dtable_destroy(&t);
    result("call_errors", ok);
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    me = dagr_rank(ctx);
    sc_set_rank(me);
    nrows = argc > 1 ? atoll(argv[1]) : 1000;
    nparts = argc > 2 ? atoi(argv[2]) : 0;
    if (nrows < 100) nrows = 100;
    sq_scratch_dir(dir);
    snprintf(trips, sizeof trips, "%s/trips.csv", dir);
    if (me == 0 && sq_gen_trips(trips, nrows, 50, 7, false) != 0) sc_say("cannot write %s", trips);
    MPI_Barrier(MPI_COMM_WORLD);
    keys_of_each_type();
    nulls_and_empty();
    names_and_chain();
    int_overflow();
    input_error();
    call_errors();
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) sc_say("cannot remove %s", dir);
    }
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
