/* DTable joins against SQLite.
 *
 * Usage: dtable_join NTRIPS NDIMS NKEYS LPARTS RPARTS
 *
 * Rank 0 generates trips (NTRIPS rows: key 0 in half of them, ~3% null keys) and dims (NDIMS
 * rows over NKEYS keys, with duplicate and null keys) (sqlcmp.h); every rank reads them into
 * LPARTS and RPARTS partitions (0: the default) and checks, against sqlite3 on the same
 * files: inner, left, right, full, semi and anti joins of trips and dims on key, by shuffle
 * and by broadcast (forced, and chosen when dims's row count is known); a join on two keys
 * (one derived by with_column on each side), on a string key, on bool and string keys, on a
 * float key (0.0 and -0.0 match), a self join; joins of filtered tables (partitions left
 * empty), of an empty right or left table; result names with the right suffix; and the
 * errors at the call (unknown key, keys of different types, nkeys 0, a broadcast RIGHT join,
 * names that still collide, bad options, NULL arguments).
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
static char dir[256], trips_csv[300], dims_csv[300];
static int lparts, rparts;

/* Fetches t to rank 0 and compares it (unordered) with sql over the tables trips and dims. */
static int same_as_sql(dagr_dtable_t *t, const char *sql, const char *what) {
    const char *files[2] = {trips_csv, dims_csv};
    const char *names[2] = {"trips", "dims"};
    int ncols[2] = {8, 3};
    const dagr_coltype_t *types[2] = {sq_trips_types, sq_dims_types};
    return sq_check_table(t, 2, files, names, ncols, types, sql, false, 1e-12, what);
}

/* Every rank agrees on one verdict (rank 0 compared). */
static void result(const char *name, int ok) {
    int all;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    sc_result(name, all, "lparts=%d rparts=%d", lparts, rparts);
}

static dagr_dtable_t *read_table(const char *path, int parts) {
    dagr_csv_opts_t o;
    dagr_csv_opts_init(&o);
    o.partitions = parts;
    dagr_dtable_t *t = NULL;
    SC_TRY(dagr_dtable_read_csv(ctx, path, &o, &t));
    return t;
}

/* Joins l and r on one key each with kind and broadcast, checks the result against sql and,
 * when want_parts >= 0, its partition count (which tells a broadcast from a shuffle). */
static int check_join(dagr_dtable_t *l, dagr_dtable_t *r, const char *lk, const char *rk,
                      dagr_join_kind_t kind, int broadcast, int want_parts, const char *sql,
                      const char *what) {
    dagr_join_opts_t o;
    dagr_join_opts_init(&o);
    o.kind = kind;
    o.broadcast = broadcast;
    dagr_dtable_t *j = NULL;
    dagr_status_t s = dagr_dtable_join(l, r, 1, &lk, &rk, &o, &j);
    if (!SC_CHECK(s == DAGR_OK, "%s: %s", what, dagr_last_error())) return 0;
    int ok = same_as_sql(j, sql, what);
    if (want_parts >= 0)
        ok &= SC_CHECK(dagr_dtable_npartitions(j) == want_parts, "%s: %d partitions, not %d", what,
                       dagr_dtable_npartitions(j), want_parts);
    dagr_dtable_destroy(&j);
    return ok;
}

#define TCOLS "t.id, t.key, t.cat, t.fare, t.tip, t.flag, t.ts, t.note"
#define TCOLS_COALESCE "t.id, coalesce(t.key, d.key), t.cat, t.fare, t.tip, t.flag, t.ts, t.note"
#define INNER_SQL "SELECT " TCOLS ", d.name, d.weight FROM trips t JOIN dims d ON t.key = d.key"
#define LEFT_SQL "SELECT " TCOLS ", d.name, d.weight FROM trips t LEFT JOIN dims d ON t.key = d.key"
#define RIGHT_SQL                                                                                  \
    "SELECT " TCOLS_COALESCE ", d.name, d.weight FROM trips t RIGHT JOIN dims d ON t.key = d.key"
#define FULL_SQL                                                                                   \
    "SELECT " TCOLS_COALESCE ", d.name, d.weight FROM trips t FULL JOIN dims d ON t.key = d.key"
#define SEMI_SQL "SELECT * FROM trips t WHERE EXISTS (SELECT 1 FROM dims d WHERE d.key = t.key)"
#define ANTI_SQL "SELECT * FROM trips t WHERE NOT EXISTS (SELECT 1 FROM dims d WHERE d.key = t.key)"

static int max_parts(dagr_dtable_t *a, dagr_dtable_t *b) {
    int x = dagr_dtable_npartitions(a), y = dagr_dtable_npartitions(b);
    return x > y ? x : y;
}

/* The six kinds by shuffle, on key. */
static void kinds(dagr_dtable_t *trips, dagr_dtable_t *dims) {
    int np = max_parts(trips, dims);
    const struct {
        const char *name;
        dagr_join_kind_t kind;
        const char *sql;
    } k[] = {{"inner", DAGR_JOIN_INNER, INNER_SQL}, {"left", DAGR_JOIN_LEFT, LEFT_SQL},
             {"right", DAGR_JOIN_RIGHT, RIGHT_SQL}, {"full", DAGR_JOIN_FULL, FULL_SQL},
             {"semi", DAGR_JOIN_SEMI, SEMI_SQL},    {"anti", DAGR_JOIN_ANTI, ANTI_SQL}};
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        char name[64];
        snprintf(name, sizeof name, "join_%s", k[i].name);
        result(name, check_join(trips, dims, "key", "key", k[i].kind, 0, np, k[i].sql, name));
    }
    /* The result's schema: left columns, then the right's without its key. */
    dagr_dtable_t *j = NULL;
    const char *key = "key";
    SC_TRY(dagr_dtable_join(trips, dims, 1, &key, &key, NULL, &j));
    const char *want[] = {"id",   "key", "cat",  "fare", "tip",
                          "flag", "ts",  "note", "name", "weight"};
    int ok = SC_CHECK(dagr_dtable_ncols(j) == 10, "%d columns", dagr_dtable_ncols(j));
    for (int c = 0; ok && c < 10; c++)
        ok &= SC_CHECK(strcmp(dagr_dtable_colname(j, c), want[c]) == 0, "column %d is %s", c,
                       dagr_dtable_colname(j, c));
    dagr_dtable_destroy(&j);
    dagr_join_opts_t o;
    dagr_join_opts_init(&o);
    o.kind = DAGR_JOIN_SEMI;
    SC_TRY(dagr_dtable_join(trips, dims, 1, &key, &key, &o, &j));
    ok &= SC_CHECK(dagr_dtable_ncols(j) == 8, "semi: %d columns", dagr_dtable_ncols(j));
    dagr_dtable_destroy(&j);
    result("join_schema", ok);
}

/* Broadcast: forced for the kinds that allow it, and chosen when dims's row count is known. */
static void broadcast(dagr_dtable_t *trips, dagr_dtable_t *dims) {
    int lp = dagr_dtable_npartitions(trips), np = max_parts(trips, dims);
    int ok = check_join(trips, dims, "key", "key", DAGR_JOIN_INNER, 1, lp, INNER_SQL, "b inner");
    ok &= check_join(trips, dims, "key", "key", DAGR_JOIN_LEFT, 1, lp, LEFT_SQL, "b left");
    ok &= check_join(trips, dims, "key", "key", DAGR_JOIN_SEMI, 1, lp, SEMI_SQL, "b semi");
    ok &= check_join(trips, dims, "key", "key", DAGR_JOIN_ANTI, 1, lp, ANTI_SQL, "b anti");
    result("broadcast_forced", ok);

    /* Not known yet: auto shuffles. Known (nrows): auto broadcasts unless too many rows, or a
     * RIGHT or FULL join. */
    ok = check_join(trips, dims, "key", "key", DAGR_JOIN_INNER, -1, np, INNER_SQL, "auto before");
    int64_t n = -1;
    ok &= SC_CHECK(dagr_dtable_nrows(dims, &n) == DAGR_OK && n > 0, "nrows %lld", (long long)n);
    ok &= check_join(trips, dims, "key", "key", DAGR_JOIN_INNER, -1, lp, INNER_SQL, "auto inner");
    ok &= check_join(trips, dims, "key", "key", DAGR_JOIN_ANTI, -1, lp, ANTI_SQL, "auto anti");
    ok &= check_join(trips, dims, "key", "key", DAGR_JOIN_FULL, -1, np, FULL_SQL, "auto full");
    ok &= check_join(trips, dims, "key", "key", DAGR_JOIN_INNER, 0, np, INNER_SQL, "never");
    dagr_join_opts_t o;
    dagr_join_opts_init(&o);
    o.broadcast_rows = n - 1;
    const char *key = "key";
    dagr_dtable_t *j = NULL;
    SC_TRY(dagr_dtable_join(trips, dims, 1, &key, &key, &o, &j));
    ok &= SC_CHECK(dagr_dtable_npartitions(j) == np, "over broadcast_rows: %d partitions",
                   dagr_dtable_npartitions(j));
    ok &= same_as_sql(j, INNER_SQL, "over broadcast_rows");
    dagr_dtable_destroy(&j);
    /* A self join by broadcast: each task reads one partition twice. */
    ok &= check_join(dims, dims, "key", "key", DAGR_JOIN_INNER, 1, dagr_dtable_npartitions(dims),
                     "SELECT a.key, a.name, a.weight, b.name, b.weight FROM dims a JOIN dims b "
                     "ON a.key = b.key",
                     "self broadcast");
    ok &= check_join(dims, dims, "key", "key", DAGR_JOIN_FULL, 0, -1,
                     "SELECT coalesce(a.key, b.key), a.name, a.weight, b.name, b.weight FROM "
                     "dims a FULL JOIN dims b ON a.key = b.key",
                     "self full");
    result("broadcast_auto", ok);
}

/* Two keys (one derived on each side), string keys, bool + string keys, a float key. */
static void other_keys(dagr_dtable_t *trips, dagr_dtable_t *dims) {
    dagr_dtable_t *tg = NULL, *dg = NULL, *j = NULL;
    SC_TRY(dagr_dtable_with_column(trips, "g", "id % 2", &tg));
    SC_TRY(dagr_dtable_with_column(dims, "g", "length(name) % 2", &dg));
    const char *k2[] = {"key", "g"};
    dagr_join_opts_t o;
    dagr_join_opts_init(&o);
    o.kind = DAGR_JOIN_LEFT;
    SC_TRY(dagr_dtable_join(tg, dg, 2, k2, k2, &o, &j));
    int ok = same_as_sql(j,
                         "SELECT " TCOLS ", t.id % 2, d.name, d.weight FROM trips t LEFT JOIN "
                         "dims d ON t.key = d.key AND t.id % 2 = length(d.name) % 2",
                         "two keys left");
    dagr_dtable_destroy(&j);
    /* The same by broadcast: keys compared through the columns (not a tag), the right side
     * read from every right partition where it is. */
    o.broadcast = 1;
    SC_TRY(dagr_dtable_join(tg, dg, 2, k2, k2, &o, &j));
    ok &= same_as_sql(j,
                      "SELECT " TCOLS ", t.id % 2, d.name, d.weight FROM trips t LEFT JOIN "
                      "dims d ON t.key = d.key AND t.id % 2 = length(d.name) % 2",
                      "two keys left, broadcast");
    dagr_dtable_destroy(&j);
    o.broadcast = -1;
    o.kind = DAGR_JOIN_FULL;
    SC_TRY(dagr_dtable_join(tg, dg, 2, k2, k2, &o, &j));
    ok &= same_as_sql(j,
                      "SELECT t.id, coalesce(t.key, d.key), t.cat, t.fare, t.tip, t.flag, t.ts, "
                      "t.note, coalesce(t.id % 2, length(d.name) % 2), d.name, d.weight FROM "
                      "trips t FULL JOIN dims d ON t.key = d.key AND t.id % 2 = length(d.name) % 2",
                      "two keys full");
    dagr_dtable_destroy(&j);
    dagr_dtable_destroy(&tg);
    dagr_dtable_destroy(&dg);
    result("join_two_keys", ok);

    /* A string key with many duplicates on both sides; the right's id takes the suffix. */
    dagr_dtable_t *few = NULL, *sub = NULL;
    SC_TRY(dagr_dtable_filter(trips, "id < 40", &few));
    const char *sel[] = {"cat", "id"};
    SC_TRY(dagr_dtable_select(few, 2, sel, &sub));
    const char *cat = "cat";
    dagr_join_opts_init(&o);
    SC_TRY(dagr_dtable_join(trips, sub, 1, &cat, &cat, &o, &j));
    ok = same_as_sql(j,
                     "SELECT " TCOLS ", s.id FROM trips t JOIN (SELECT cat, id FROM trips WHERE "
                     "id < 40) s ON t.cat = s.cat",
                     "string key");
    ok &= SC_CHECK(dagr_dtable_ncols(j) == 9 && strcmp(dagr_dtable_colname(j, 8), "id_right") == 0,
                   "suffixed name %s", dagr_dtable_colname(j, 8));
    dagr_dtable_destroy(&j);
    o.right_suffix = "_r";
    o.kind = DAGR_JOIN_RIGHT;
    SC_TRY(dagr_dtable_join(trips, sub, 1, &cat, &cat, &o, &j));
    ok &= same_as_sql(j,
                      "SELECT t.id, t.key, coalesce(t.cat, s.cat), t.fare, t.tip, t.flag, t.ts, "
                      "t.note, s.id FROM trips t RIGHT JOIN (SELECT cat, id FROM trips WHERE id "
                      "< 40) s ON t.cat = s.cat",
                      "string key right");
    ok &= SC_CHECK(strcmp(dagr_dtable_colname(j, 8), "id_r") == 0, "suffixed name %s",
                   dagr_dtable_colname(j, 8));
    dagr_dtable_destroy(&j);
    result("join_string_key_suffix", ok);

    /* bool and string keys together; a float key (-0.0 meets 0.0). */
    dagr_dtable_t *a = NULL, *b = NULL, *bs = NULL;
    SC_TRY(dagr_dtable_filter(trips, "id < 200", &a));
    SC_TRY(dagr_dtable_filter(trips, "id >= 100 and id < 220", &b));
    const char *fsel[] = {"flag", "cat", "fare", "tip"};
    SC_TRY(dagr_dtable_select(b, 4, fsel, &bs));
    const char *fk[] = {"flag", "cat"};
    dagr_join_opts_init(&o);
    o.kind = DAGR_JOIN_FULL;
    SC_TRY(dagr_dtable_join(a, bs, 2, fk, fk, &o, &j));
    ok = same_as_sql(j,
                     "SELECT t.id, t.key, coalesce(t.cat, s.cat), t.fare, t.tip, "
                     "coalesce(t.flag, s.flag), t.ts, t.note, s.fare, s.tip FROM (SELECT * FROM "
                     "trips WHERE id < 200) t FULL JOIN (SELECT flag, cat, fare, tip FROM trips "
                     "WHERE id >= 100 AND id < 220) s ON t.flag = s.flag AND t.cat = s.cat",
                     "bool and string keys");
    ok &= SC_CHECK(strcmp(dagr_dtable_colname(j, 8), "fare_right") == 0, "name %s",
                   dagr_dtable_colname(j, 8));
    dagr_dtable_destroy(&j);
    const char *tip = "tip";
    dagr_join_opts_init(&o);
    SC_TRY(dagr_dtable_join(a, bs, 1, &tip, &tip, &o, &j));
    ok &= same_as_sql(j,
                      "SELECT t.*, s.flag, s.cat, s.fare FROM (SELECT * FROM trips WHERE id < "
                      "200) t JOIN (SELECT flag, cat, fare, tip FROM trips WHERE id >= 100 AND id "
                      "< 220) s ON t.tip = s.tip",
                      "float key");
    dagr_dtable_destroy(&j);
    dagr_dtable_destroy(&a);
    dagr_dtable_destroy(&b);
    dagr_dtable_destroy(&bs);
    result("join_bool_float_keys", ok);

    /* Filtered inputs: later partitions of trips are empty, dims keeps some keys. */
    dagr_dtable_t *tf = NULL, *df = NULL;
    SC_TRY(dagr_dtable_filter(trips, "id < 150 or key = 0", &tf));
    SC_TRY(dagr_dtable_filter(dims, "key % 3 = 1 or key is null", &df));
    const char *key = "key";
    ok = 1;
    for (int bc = 0; bc <= 1; bc++) {
        dagr_join_opts_init(&o);
        o.broadcast = bc;
        o.kind = DAGR_JOIN_LEFT;
        SC_TRY(dagr_dtable_join(tf, df, 1, &key, &key, &o, &j));
        ok &= same_as_sql(j,
                          "SELECT " TCOLS ", d.name, d.weight FROM (SELECT * FROM trips WHERE "
                          "id < 150 OR key = 0) t LEFT JOIN (SELECT * FROM dims WHERE key % 3 = 1 "
                          "OR key IS NULL) d ON t.key = d.key",
                          bc ? "filtered broadcast" : "filtered");
        dagr_dtable_destroy(&j);
    }
    o.broadcast = 0;
    o.kind = DAGR_JOIN_FULL;
    SC_TRY(dagr_dtable_join(tf, df, 1, &key, &key, &o, &j));
    ok &= same_as_sql(j,
                      "SELECT " TCOLS_COALESCE ", d.name, d.weight FROM (SELECT * FROM trips "
                      "WHERE id < 150 OR key = 0) t FULL JOIN (SELECT * FROM dims WHERE key % 3 "
                      "= 1 OR key IS NULL) d ON t.key = d.key",
                      "filtered full");
    dagr_dtable_destroy(&j);
    /* A chain without waits: join, then filter and join again. */
    dagr_dtable_t *j1 = NULL, *j2 = NULL, *j3 = NULL;
    SC_TRY(dagr_dtable_join(tf, df, 1, &key, &key, NULL, &j1));
    SC_TRY(dagr_dtable_filter(j1, "weight > 20", &j2));
    o.kind = DAGR_JOIN_SEMI;
    SC_TRY(dagr_dtable_join(dims, j2, 1, &key, &key, &o, &j3));
    ok &= same_as_sql(j3,
                      "SELECT * FROM dims d WHERE EXISTS (SELECT 1 FROM trips t JOIN dims e ON "
                      "t.key = e.key WHERE (t.id < 150 OR t.key = 0) AND (e.key % 3 = 1) AND "
                      "e.weight > 20 AND t.key = d.key)",
                      "chain");
    dagr_dtable_destroy(&j1);
    dagr_dtable_destroy(&j2);
    dagr_dtable_destroy(&j3);
    dagr_dtable_destroy(&tf);
    dagr_dtable_destroy(&df);
    result("join_filtered", ok);
}

/* Empty right, empty left, both empty. */
static void empties(dagr_dtable_t *trips, dagr_dtable_t *dims) {
    dagr_dtable_t *te = NULL, *de = NULL;
    SC_TRY(dagr_dtable_filter(trips, "id < 0", &te));
    SC_TRY(dagr_dtable_filter(dims, "weight < -1000", &de));
#define NODIMS "(SELECT * FROM dims WHERE 0)"
#define NOTRIPS "(SELECT * FROM trips WHERE 0)"
    int ok = 1;
    for (int bc = 0; bc <= 1; bc++) {
        ok &= check_join(trips, de, "key", "key", DAGR_JOIN_INNER, bc, -1,
                         "SELECT " TCOLS ", d.name, d.weight FROM trips t JOIN " NODIMS
                         " d ON t.key = d.key",
                         "empty right inner");
        ok &= check_join(trips, de, "key", "key", DAGR_JOIN_LEFT, bc, -1,
                         "SELECT " TCOLS ", d.name, d.weight FROM trips t LEFT JOIN " NODIMS
                         " d ON t.key = d.key",
                         "empty right left");
        ok &= check_join(trips, de, "key", "key", DAGR_JOIN_ANTI, bc, -1, "SELECT * FROM trips",
                         "empty right anti");
        ok &= check_join(trips, de, "key", "key", DAGR_JOIN_SEMI, bc, -1,
                         "SELECT * FROM trips WHERE 0", "empty right semi");
    }
    ok &= check_join(trips, de, "key", "key", DAGR_JOIN_FULL, -1, -1,
                     "SELECT " TCOLS ", d.name, d.weight FROM trips t LEFT JOIN " NODIMS
                     " d ON t.key = d.key",
                     "empty right full");
    ok &= check_join(trips, de, "key", "key", DAGR_JOIN_RIGHT, -1, -1,
                     "SELECT " TCOLS ", d.name, d.weight FROM trips t JOIN " NODIMS
                     " d ON t.key = d.key",
                     "empty right right");
    result("join_empty_right", ok);

    ok = check_join(te, dims, "key", "key", DAGR_JOIN_INNER, 0, -1,
                    "SELECT " TCOLS ", d.name, d.weight FROM " NOTRIPS " t JOIN dims d ON t.key "
                    "= d.key",
                    "empty left inner");
    ok &= check_join(te, dims, "key", "key", DAGR_JOIN_LEFT, 1, -1,
                     "SELECT " TCOLS ", d.name, d.weight FROM " NOTRIPS
                     " t JOIN dims d ON t.key = d.key",
                     "empty left left");
    ok &= check_join(te, dims, "key", "key", DAGR_JOIN_RIGHT, 0, -1,
                     "SELECT " TCOLS_COALESCE ", d.name, d.weight FROM " NOTRIPS
                     " t RIGHT JOIN dims d ON t.key = d.key",
                     "empty left right");
    ok &= check_join(te, dims, "key", "key", DAGR_JOIN_FULL, 0, -1,
                     "SELECT " TCOLS_COALESCE ", d.name, d.weight FROM " NOTRIPS
                     " t FULL JOIN dims d ON t.key = d.key",
                     "empty left full");
    ok &= check_join(te, de, "key", "key", DAGR_JOIN_FULL, 0, -1,
                     "SELECT " TCOLS ", d.name, d.weight FROM " NOTRIPS " t JOIN " NODIMS
                     " d ON t.key = d.key",
                     "both empty full");
    ok &= check_join(te, dims, "key", "key", DAGR_JOIN_ANTI, 1, -1, "SELECT * FROM trips WHERE 0",
                     "empty left anti");
    result("join_empty_left", ok);
    dagr_dtable_destroy(&te);
    dagr_dtable_destroy(&de);
}

/* Errors at the call: DAGR_ERR_ARG with a message naming the problem, no table made. */
static int call_error(dagr_dtable_t *l, dagr_dtable_t *r, int nkeys, const char *const *lk,
                      const char *const *rk, const dagr_join_opts_t *o, const char *has) {
    dagr_dtable_t *j = NULL;
    int ok = SC_EXPECT_STATUS(dagr_dtable_join(l, r, nkeys, lk, rk, o, &j), DAGR_ERR_ARG);
    ok &= SC_CHECK(strstr(dagr_last_error(), has) != NULL, "want '%s' in: %s", has,
                   dagr_last_error());
    ok &= SC_CHECK(j == NULL, "no table on error");
    return ok;
}

static void errors(dagr_dtable_t *trips, dagr_dtable_t *dims) {
    const char *key = "key", *nope = "nope", *cat = "cat", *name = "name";
    dagr_join_opts_t o;
    dagr_join_opts_init(&o);
    int ok = SC_CHECK(o.kind == DAGR_JOIN_INNER && strcmp(o.right_suffix, "_right") == 0 &&
                          o.broadcast == -1 && o.broadcast_rows == 1000000,
                      "defaults");
    ok &= call_error(trips, dims, 1, &nope, &key, NULL, "unknown column 'nope' (columns: id, key");
    ok &= call_error(trips, dims, 1, &key, &nope, NULL, "unknown column 'nope' (columns: key");
    ok &= call_error(trips, dims, 1, &cat, &key, NULL,
                     "left 'cat' is string but right 'key' is int64");
    ok &= call_error(trips, dims, 1, &key, &name, NULL, "is int64 but right 'name' is string");
    ok &= call_error(trips, dims, 0, &key, &key, NULL, "nkeys is 0");
    ok &= call_error(trips, dims, -1, &key, &key, NULL, "nkeys is -1");
    ok &= call_error(trips, dims, 1, NULL, &key, NULL, "left_keys or right_keys is NULL");
    const char *many[65];
    for (int k = 0; k < 65; k++)
        many[k] = "key";
    ok &= call_error(trips, dims, 65, many, many, NULL, "nkeys is 65 (1 to 64)");
    o.kind = DAGR_JOIN_RIGHT;
    o.broadcast = 1;
    ok &= call_error(trips, dims, 1, &key, &key, &o, "a right join cannot broadcast");
    o.kind = DAGR_JOIN_FULL;
    ok &= call_error(trips, dims, 1, &key, &key, &o, "a full join cannot broadcast");
    dagr_join_opts_init(&o);
    o.kind = (dagr_join_kind_t)9;
    ok &= call_error(trips, dims, 1, &key, &key, &o, "unknown kind 9");
    dagr_join_opts_init(&o);
    o.broadcast = 2;
    ok &= call_error(trips, dims, 1, &key, &key, &o, "broadcast is 2");
    dagr_join_opts_init(&o);
    o.broadcast_rows = -5;
    ok &= call_error(trips, dims, 1, &key, &key, &o, "broadcast_rows is -5");
    dagr_join_opts_init(&o);
    o.right_suffix = NULL;
    ok &= call_error(trips, dims, 1, &key, &key, &o, "right_suffix is NULL");
    /* A self join with an empty suffix: 'name' twice. */
    o.right_suffix = "";
    ok &= call_error(dims, dims, 1, &key, &key, &o, "two columns named 'name'");
    /* The suffixed name is a left column already. */
    dagr_dtable_t *w = NULL;
    SC_TRY(dagr_dtable_with_column(dims, "name_right", "1", &w));
    ok &= call_error(w, dims, 1, &key, &key, NULL, "two columns named 'name_right'");
    dagr_dtable_destroy(&w);
    dagr_dtable_t *j = NULL;
    ok &= SC_EXPECT_STATUS(dagr_dtable_join(NULL, dims, 1, &key, &key, NULL, &j), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_join(trips, NULL, 1, &key, &key, NULL, &j), DAGR_ERR_ARG);
    ok &= SC_EXPECT_STATUS(dagr_dtable_join(trips, dims, 1, &key, &key, NULL, NULL), DAGR_ERR_ARG);
    const char *nul = NULL;
    ok &= SC_EXPECT_STATUS(dagr_dtable_join(trips, dims, 1, &nul, &key, NULL, &j), DAGR_ERR_ARG);
    ok &= SC_CHECK(j == NULL, "no table on error");
    result("join_call_errors", ok);
}

int main(int argc, char **argv) {
    SC_TRY(dagr_init(&argc, &argv, NULL, &ctx));
    me = dagr_rank(ctx);
    sc_set_rank(me);
    int64_t ntrips = argc > 1 ? atoll(argv[1]) : 1000;
    int64_t ndims = argc > 2 ? atoll(argv[2]) : 100;
    int64_t nkeys = argc > 3 ? atoll(argv[3]) : 60;
    lparts = argc > 4 ? atoi(argv[4]) : 0;
    rparts = argc > 5 ? atoi(argv[5]) : 0;
    sq_scratch_dir(dir);
    snprintf(trips_csv, sizeof trips_csv, "%s/trips.csv", dir);
    snprintf(dims_csv, sizeof dims_csv, "%s/dims.csv", dir);
    if (me == 0 && (sq_gen_trips(trips_csv, ntrips, nkeys, 1, false) != 0 ||
                    sq_gen_dims(dims_csv, ndims, nkeys, 2) != 0))
        sc_say("cannot write the data in %s", dir);
    MPI_Barrier(MPI_COMM_WORLD);
    dagr_dtable_t *trips = read_table(trips_csv, lparts), *dims = read_table(dims_csv, rparts);
    kinds(trips, dims);
    other_keys(trips, dims);
    empties(trips, dims);
    errors(trips, dims);
    broadcast(trips, dims); /* last: it makes dims's row count known */
    dagr_dtable_destroy(&trips);
    dagr_dtable_destroy(&dims);
    MPI_Barrier(MPI_COMM_WORLD);
    if (me == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) sc_say("cannot remove %s", dir);
    }
    SC_TRY(dagr_finalize(&ctx));
    return sc_exit_code();
}
