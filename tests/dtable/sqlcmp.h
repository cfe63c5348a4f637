/* Helpers of the DTable scenario programs (tests/dtable/dtable_*.c): generated CSV data, the
 * same query run by Debian's sqlite3 CLI, and the comparison of dagr's rows with SQLite's.
 *
 * A scenario (a plain MPI program, tests/mpi/scenario.h) has rank 0 generate the files,
 * every rank run the dagr operations, rank 0 fetch the result (dagr_dtable_fetch) and compare
 * it with sqlcmp_query's rows for the equivalent SQL. */
#ifndef DAGR_TESTS_SQLCMP_H
#define DAGR_TESTS_SQLCMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dagr/dagr.h>

/* One value of a result row. */
typedef struct sq_val {
    int type; /* dagr_coltype_t of the column; the value below for it */
    bool null;
    int64_t i; /* int64, bool (0/1), timestamp (microseconds) */
    double d;  /* float64 */
    char *s;   /* string (malloc'ed, NUL-terminated; the data hold no NUL) */
} sq_val_t;

typedef struct sq_rows {
    int ncols;
    int types[64]; /* dagr_coltype_t per column */
    int64_t n;
    sq_val_t *v; /* row i, column j at v[i * ncols + j] */
} sq_rows_t;

void sq_rows_free(sq_rows_t *r);

/* The generated tables. Deterministic from the seed; the same files on every call.
 *
 * trips (nrows rows, header "id,key,cat,fare,tip,flag,ts,note"):
 *   id    int64, the row number, never null
 *   key   int64, skewed: half the rows hold key 0, the others in [1, nkeys); ~3% null
 *   cat   string, 12 values, among them unicode ("café", "東京", "emoji 😀"), one holding a
 *         comma ("a,b") and one a quote and a newline ("say \"hi\"\nbye"), quoted in the file;
 *         ~5% null
 *   fare  float64, [0, 100) with 6 decimals, ~5% null
 *   tip   float64, ~20% null, some negative zero ("-0.0")
 *   flag  bool, true/false, ~5% null
 *   ts    timestamp, whole seconds in 2024 ("2024-03-05T06:07:08Z"), ~5% null
 *   note  string, free text of 0-40 chars with commas, quotes, CRLF inside quotes; ~10% null
 *         (never the empty string: SQLite's import cannot tell "" from a null)
 * dims (nrows rows, header "key,name,weight"):
 *   key   int64 in [0, nkeys) with some duplicates and ~2% null
 *   name  string "name_<k>" or unicode, never null
 *   weight float64, ~5% null
 * Files use LF, except that with crlf every record ends with CRLF. Returns 0, or -1 with
 * errno. */
int sq_gen_trips(const char *path, int64_t nrows, int64_t nkeys, uint64_t seed, bool crlf);
int sq_gen_dims(const char *path, int64_t nrows, int64_t nkeys, uint64_t seed);

/* The column types of the generated files, for dagr_csv_opts_t.types (8 and 3 entries). */
extern const dagr_coltype_t sq_trips_types[8];
extern const dagr_coltype_t sq_dims_types[3];

/* Runs sqlite3 (in memory) on ntables CSV files imported as tables names[k] with the given
 * column types (types[k][0 .. ncols[k])), then the query sql, and reads its rows into *out
 * typed as out_types[0 .. out_ncols) (the dagr result's types, so that SQLite's text can be
 * read back as each). On import, empty fields become NULL, bools become 0/1, timestamps
 * integer microseconds since 1970 (unixepoch * 1000000), so queries compare as dagr does.
 * Returns 0, or -1 with a message in err (256 bytes). */
int sq_query(int ntables, const char *const *paths, const char *const *names, const int *ncols,
             const dagr_coltype_t *const *types, const char *sql, int out_ncols,
             const dagr_coltype_t *out_types, sq_rows_t *out, char *err);

/* dagr's fetched rows as sq_rows_t. Returns 0 or -1 (out of memory). */
int sq_from_dagr(const dagr_rows_t *r, sq_rows_t *out);

/* Compares a (dagr's) with b (SQLite's): same column count and types, same rows; unless
 * ordered, both are sorted first (by every column, nulls first). Floats must agree within
 * rtol relatively (and 1e-300 absolutely), NaN with NaN; -0.0 equals 0.0. Returns 0 when
 * equal, else -1 with the first difference (row, column, both values) in why (512 bytes). */
int sq_compare(sq_rows_t *a, sq_rows_t *b, bool ordered, double rtol, char *why);

/* The scenarios' check: fetches t to rank 0 and compares it (sq_compare, ordered or not, with
 * rtol) with what sql gives over the ntables CSV files (as sq_query takes them), typed as t's
 * columns. A failure is reported as an SC_CHECK failure naming `what`. Collective (the fetch):
 * returns on rank 0 whether they are equal, on the others whether the fetch worked. */
int sq_check_table(dagr_dtable_t *t, int ntables, const char *const *paths,
                   const char *const *names, const int *ncols, const dagr_coltype_t *const *types,
                   const char *sql, bool ordered, double rtol, const char *what);

/* Creates a fresh scratch directory for a scenario ("/tmp/dagr-dtable-XXXXXX" style) on rank
 * 0 and broadcasts its name to every rank (MPI_COMM_WORLD), into dir (256 bytes). */
void sq_scratch_dir(char *dir);

#endif
