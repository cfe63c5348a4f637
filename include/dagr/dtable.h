/* dagr — distributed tables (DTable).
 *
 * A table is a schema (column names and types, the same on every rank) and row partitions
 * spread over the ranks, partition p living on rank p % size. Each partition is one data
 * handle whose size the task writing it decides, holding its columns Arrow-like (values,
 * string offsets, a validity bitmap for nulls); empty partitions are normal. Operations are
 * logically collective: every rank calls them in the same order with the same arguments,
 * they insert tasks into the same graph as DArray and linear algebra operations, and return
 * at once with a new table whose partitions the tasks will write. Chains (read, filter, join,
 * group, sort, write) need no wait in between. Errors found at the call (an unknown column,
 * an expression that does not parse) return at once; errors found by tasks (malformed CSV)
 * reach every rank at the next synchronising call (dagr_wait_all, dagr_dtable_nrows, a
 * fetch), as for any task.
 *
 * A table owns its partitions; destroying it lets tasks already inserted finish. Tables
 * made from one another share nothing: destroying an input never disturbs its results.
 * Under DAGR_MEMORY_LIMIT partitions spill like tiles, and dagr_checkpoint / dagr_resume keep
 * them like any handle (dagr_dtable_save / load write an HDF5 file for other tools). */
#ifndef DAGR_DTABLE_H
#define DAGR_DTABLE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <dagr/darray.h>
#include <dagr/runtime.h>
#include <dagr/status.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dagr_dtable dagr_dtable_t;

/* Column types. Timestamps are microseconds since 1970-01-01T00:00:00Z (UTC). */
typedef enum dagr_coltype {
    DAGR_COL_INT64 = 0,
    DAGR_COL_FLOAT64 = 1,
    DAGR_COL_BOOL = 2,
    DAGR_COL_STRING = 3, /* UTF-8 */
    DAGR_COL_TIMESTAMP = 4,
} dagr_coltype_t;

/* "int64", "float64", "bool", "string", "timestamp"; "?" for another value. Local. */
DAGR_API const char *dagr_coltype_name(dagr_coltype_t t);

/* ------------------------------------------------------------------------------------------
 * Reading CSV
 * ---------------------------------------------------------------------------------------- */

/* CSV dialect and schema. Fill with dagr_csv_opts_init. RFC 4180: quoted fields may hold the
 * delimiter, newlines and doubled quotes; records end with LF or CRLF; a last record without
 * newline counts; blank lines are skipped. An empty unquoted field, or one equal to a null
 * marker, is null. */
typedef struct dagr_csv_opts {
    char delim;               /* ',' */
    char quote;               /* '"' */
    bool header;              /* true (default): the first line names the columns */
    const char *const *nulls; /* further null markers, e.g. {"NA", "NULL"}; default none */
    int nnulls;
    /* The schema, optional: ncols types (and names, which replace the header's or the
     * default c0, c1, ...). Without types they are inferred from the first sample_bytes of
     * the first file: for each column the first of bool, int64, float64, timestamp that reads
     * every value of the sample, else string. */
    int ncols;                   /* 0: infer */
    const dagr_coltype_t *types; /* ncols entries, or NULL with ncols 0 */
    const char *const *names;    /* ncols entries, or NULL (the header's names) */
    int64_t sample_bytes;        /* 1 MiB */
    int partitions;              /* partitions to read into; 0 (default): ranks x threads */
} dagr_csv_opts_t;

/* Fills *o with the defaults above. Local. */
DAGR_API void dagr_csv_opts_init(dagr_csv_opts_t *o);

/* Reads one CSV file, or every file a glob pattern matches (in name order, all with the same
 * columns; a header, when there is one, must be the same in each), into a table. Every rank
 * parses its own byte ranges of the files at once: a record belongs to the range it starts
 * in, whatever quoted newlines lie before it. Collective (the ranks agree on the files and
 * the schema); the parsing itself runs in tasks. Errors: DAGR_ERR_ARG (ctx, path or out
 * NULL, bad options, no file matches), DAGR_ERR_IO (a file that cannot be opened or read),
 * DAGR_ERR_FORMAT (a malformed sample or header). A malformed record is DAGR_ERR_FORMAT at
 * the next synchronising call, naming the file, line, byte, column and what was wrong. */
DAGR_API dagr_status_t dagr_dtable_read_csv(dagr_ctx_t *ctx, const char *path,
                                            const dagr_csv_opts_t *opts, dagr_dtable_t **out);

/* As dagr_dtable_read_csv over a list of nfiles paths (no glob). Collective. */
DAGR_API dagr_status_t dagr_dtable_read_csv_files(dagr_ctx_t *ctx, const char *const *paths,
                                                  int nfiles, const dagr_csv_opts_t *opts,
                                                  dagr_dtable_t **out);

/* ------------------------------------------------------------------------------------------
 * The table itself
 * ---------------------------------------------------------------------------------------- */

/* Destroys a table (tasks inserted on it still run). Logically collective. Sets *t to NULL;
 * tolerates NULL. */
DAGR_API dagr_status_t dagr_dtable_destroy(dagr_dtable_t **t);

/* The schema and the partition count. Local. Column lookups return -1 for an unknown name. */
DAGR_API int dagr_dtable_ncols(const dagr_dtable_t *t);
DAGR_API const char *dagr_dtable_colname(const dagr_dtable_t *t, int j);
DAGR_API dagr_coltype_t dagr_dtable_coltype(const dagr_dtable_t *t, int j);
DAGR_API int dagr_dtable_colindex(const dagr_dtable_t *t, const char *name);
DAGR_API int dagr_dtable_npartitions(const dagr_dtable_t *t);

/* The number of rows, on every rank. Waits for the tasks writing t. Collective. */
DAGR_API dagr_status_t dagr_dtable_nrows(dagr_dtable_t *t, int64_t *out);

/* The bytes t's partitions take in memory (columns, bitmaps, string offsets and each
 * partition's few bytes of header), summed over the ranks, on every rank. Waits for the tasks
 * writing t. Collective. */
DAGR_API dagr_status_t dagr_dtable_nbytes(dagr_dtable_t *t, int64_t *out);

/* ------------------------------------------------------------------------------------------
 * Row-wise operations (one task per partition, no data moved)
 *
 * Expressions are strings over the columns, parsed once at the call: literals (42, 2.5,
 * 'text', true, false, null, ts('2024-01-02T03:04:05Z')), column names (or "any name" in
 * double quotes), + - * / %, comparisons (= == != <> < <= > >=), is [not] null, and, or,
 * not, and the functions abs sqrt floor ceil round lower upper length coalesce. SQL typing
 * and three-valued logic: int64 / int64 is float64 (null on division by 0), an int64
 * overflow is null. An expression that does not parse or type-check is DAGR_ERR_ARG with a
 * message naming the problem and its byte offset, e.g.
 *   "expression 'fair > 1' at 0: unknown column 'fair' (columns: fare, tip)".
 * ---------------------------------------------------------------------------------------- */

/* The rows where pred is true (not false, not null), in order. Logically collective. Errors:
 * DAGR_ERR_ARG (NULL arguments, pred not a bool expression or not parsing). */
DAGR_API dagr_status_t dagr_dtable_filter(dagr_dtable_t *t, const char *pred, dagr_dtable_t **out);

/* The columns named, in that order. Logically collective. Errors: DAGR_ERR_ARG (NULL arguments,
 * ncols < 1, an unknown or repeated name). */
DAGR_API dagr_status_t dagr_dtable_select(dagr_dtable_t *t, int ncols, const char *const *names,
                                          dagr_dtable_t **out);

/* t with a column `name` computed by expr: replaced in place when t has one of that name,
 * appended otherwise. Logically collective. Errors: DAGR_ERR_ARG (NULL arguments, an empty
 * name, an expression that does not parse). */
DAGR_API dagr_status_t dagr_dtable_with_column(dagr_dtable_t *t, const char *name, const char *expr,
                                               dagr_dtable_t **out);

/* The first k rows of t (all when t has fewer), in one partition on rank 0. Logically
 * collective. Errors: DAGR_ERR_ARG (NULL arguments, k < 0). */
DAGR_API dagr_status_t dagr_dtable_head(dagr_dtable_t *t, int64_t k, dagr_dtable_t **out);

/* One partition as a callback sees it: column j's values (int64_t / double / uint8_t 0-1 /
 * UTF-8 bytes / int64_t microseconds), its validity bitmap (bit i of valid[j][i / 8]; NULL
 * when no row is null) and, for strings, offsets[j] (nrows + 1 entries; row i is
 * values[j][offsets[j][i] .. offsets[j][i + 1])). Read-only. */
typedef struct dagr_dtable_part {
    int index; /* the partition's number */
    int64_t nrows;
    int ncols;
    const char *const *names;
    const dagr_coltype_t *types;
    const void *const *values;
    const uint8_t *const *valid;
    const int64_t *const *offsets;
} dagr_dtable_part_t;

/* The escape hatch for what expressions cannot say: fn computes a column of a fixed-width
 * type (int64, float64, bool, timestamp) for one partition, filling out_values (nrows
 * elements of the type: int64_t, double, uint8_t 0/1, int64_t) and, when it produces nulls,
 * clearing bits of out_valid ((nrows + 7) / 8 bytes, all set on entry); it returns DAGR_OK or
 * an error status, which fails the task (the message: dagr_task_fail's). It runs in tasks,
 * on any worker thread of the partition's rank, several at once: user must be valid on every
 * rank until the next wait. The result is t with the column `name` replaced or appended.
 * Logically collective. Errors: DAGR_ERR_ARG (NULL arguments, an empty name, a string type). */
typedef dagr_status_t (*dagr_dtable_column_fn)(const dagr_dtable_part_t *part, void *out_values,
                                               uint8_t *out_valid, void *user);
DAGR_API dagr_status_t dagr_dtable_map_column(dagr_dtable_t *t, const char *name,
                                              dagr_coltype_t type, dagr_dtable_column_fn fn,
                                              void *user, dagr_dtable_t **out);

/* ------------------------------------------------------------------------------------------
 * Fetching rows
 * ---------------------------------------------------------------------------------------- */

/* Rows held in local memory, as dagr_dtable_fetch returns them. */
typedef struct dagr_rows dagr_rows_t;

/* The first k rows of t (k < 0: every row), in partition order, into *out on rank root, or on
 * every rank when root is -1 (*out is NULL on the others). Collective (waits). Errors:
 * DAGR_ERR_ARG (NULL arguments, root out of range), those of the tasks writing t. */
DAGR_API dagr_status_t dagr_dtable_fetch(dagr_dtable_t *t, int64_t k, int root, dagr_rows_t **out);

/* Accessors of fetched rows. Local. Row and column indices are not checked beyond the
 * debug asserts: 0 <= i < dagr_rows_count, 0 <= j < dagr_rows_ncols. */
DAGR_API int64_t dagr_rows_count(const dagr_rows_t *r);
DAGR_API int dagr_rows_ncols(const dagr_rows_t *r);
DAGR_API const char *dagr_rows_colname(const dagr_rows_t *r, int j);
DAGR_API dagr_coltype_t dagr_rows_coltype(const dagr_rows_t *r, int j);
DAGR_API bool dagr_rows_valid(const dagr_rows_t *r, int j, int64_t i);    /* false: null */
DAGR_API int64_t dagr_rows_int64(const dagr_rows_t *r, int j, int64_t i); /* int64, timestamp */
DAGR_API double dagr_rows_float64(const dagr_rows_t *r, int j, int64_t i);
DAGR_API bool dagr_rows_bool(const dagr_rows_t *r, int j, int64_t i);
/* A string row's bytes (not NUL-terminated) and length. */
DAGR_API const char *dagr_rows_string(const dagr_rows_t *r, int j, int64_t i, size_t *len);
/* Column j whole, in the layout of dagr_dtable_part_t. */
DAGR_API const void *dagr_rows_column(const dagr_rows_t *r, int j, const uint8_t **valid,
                                      const int64_t **offsets);
DAGR_API void dagr_rows_free(dagr_rows_t **r);

/* Prints the first k rows of t as an aligned text table (and the row count) to f on rank 0.
 * Collective (waits). Errors: those of dagr_dtable_fetch. */
DAGR_API dagr_status_t dagr_dtable_print(dagr_dtable_t *t, int64_t k, FILE *f);

/* ------------------------------------------------------------------------------------------
 * Group-by, join, sort (the rows move between ranks: a shuffle through the runtime)
 * ---------------------------------------------------------------------------------------- */

/* Aggregates (SQL's, nulls ignored except by count(*)):
 *   SUM            int64 -> int64 (null when a group's sum overflows), float64 -> float64;
 *                  null for a group without a non-null value
 *   COUNT          the non-null values of the column, int64
 *   COUNT_ALL      the rows (count(*)), int64; column must be NULL
 *   MEAN           int64 or float64 -> float64, null without a value
 *   MIN, MAX       any type but bool, the column's type (strings bytewise)
 *   COUNT_DISTINCT the distinct non-null values, int64 */
typedef enum dagr_agg_op {
    DAGR_AGG_SUM = 0,
    DAGR_AGG_COUNT = 1,
    DAGR_AGG_COUNT_ALL = 2,
    DAGR_AGG_MEAN = 3,
    DAGR_AGG_MIN = 4,
    DAGR_AGG_MAX = 5,
    DAGR_AGG_COUNT_DISTINCT = 6,
} dagr_agg_op_t;

typedef struct dagr_agg {
    dagr_agg_op_t op;
    const char *column; /* NULL for COUNT_ALL */
    const char *as;     /* the result column's name; NULL: "sum_fare", "count", ... */
} dagr_agg_t;

/* One row per distinct combination of the key columns (null keys form one group, as SQL's
 * GROUP BY), with the key columns first and then one column per aggregate; the groups come
 * in no particular order. Partial aggregation per partition, a hash shuffle of the partial
 * results, and a final merge per partition. Logically collective. Errors: DAGR_ERR_ARG (NULL
 * arguments, nkeys < 1, naggs < 0, an unknown column, an aggregate its column's type does not
 * take, a repeated result name). */
DAGR_API dagr_status_t dagr_dtable_groupby_agg(dagr_dtable_t *t, int nkeys, const char *const *keys,
                                               int naggs, const dagr_agg_t *aggs,
                                               dagr_dtable_t **out);

typedef enum dagr_join_kind {
    DAGR_JOIN_INNER = 0,
    DAGR_JOIN_LEFT = 1,  /* every left row, right columns null where none matches */
    DAGR_JOIN_RIGHT = 2, /* every right row */
    DAGR_JOIN_FULL = 3,  /* full outer */
    DAGR_JOIN_SEMI = 4,  /* the left rows with a match, left columns only */
    DAGR_JOIN_ANTI = 5,  /* the left rows without one */
} dagr_join_kind_t;

/* Join options. Fill with dagr_join_opts_init. */
typedef struct dagr_join_opts {
    dagr_join_kind_t kind;    /* DAGR_JOIN_INNER */
    const char *right_suffix; /* "_right": appended to a right column whose name the left has */
    /* Broadcast instead of shuffling: the right table is sent whole to every rank holding
     * left partitions (no shuffle of the big side). -1 (default): when the right table's row
     * count is known (it came from dagr_dtable_nrows, a fetch or a load) and at most
     * broadcast_rows, and the kind allows it (not RIGHT or FULL); 0: never; 1: always
     * broadcast the right (refused for RIGHT and FULL). */
    int broadcast;
    int64_t broadcast_rows; /* 1,000,000 */
} dagr_join_opts_t;

/* Fills *o with the defaults above. Local. */
DAGR_API void dagr_join_opts_init(dagr_join_opts_t *o);

/* The join of left and right on left_keys[i] = right_keys[i] for i < nkeys (nulls never
 * match, as in SQL; 0.0 matches -0.0, and NaN matches NaN). The result has the left columns,
 * then the right ones other than the keys (none for SEMI and ANTI), a right name the left
 * also has taking right_suffix; for RIGHT and FULL joins a key column holds the right key
 * where the left row is missing (SQL's COALESCE(l.k, r.k)). Rows come in no particular
 * order. A hash join per partition after a hash shuffle of both sides on the keys (the
 * result has as many partitions as the input with more), or, when broadcasting, the right
 * table gathered and hashed once per rank and probed by each left partition where it is
 * (the result has the left's partitions). Logically collective. Errors: DAGR_ERR_ARG (NULL
 * arguments, nkeys < 1 or > 64, an unknown key, keys of different types, tables of
 * different contexts, a bad kind or broadcast, a NULL right_suffix, result names that still
 * collide after the suffix). */
DAGR_API dagr_status_t dagr_dtable_join(dagr_dtable_t *left, dagr_dtable_t *right, int nkeys,
                                        const char *const *left_keys, const char *const *right_keys,
                                        const dagr_join_opts_t *opts, dagr_dtable_t **out);

/* t sorted by keys[0], then keys[1], ... (descending[i] true: descending; NULL: every key
 * ascending), nulls last in either direction, stable (rows that tie keep their order).
 * Values order as numbers (timestamps too; -0.0 = 0.0, NaN above +inf, so first when
 * descending), false before true, strings bytewise (a prefix before the longer string). The
 * result has t's partition count; its partitions are ranges in key order: partition 0 holds
 * the first rows (rows of one key may span partitions). Sample based range partitioning, a
 * shuffle, then a local sort per partition. Logically collective. Errors: DAGR_ERR_ARG (NULL
 * arguments, nkeys < 1 or > 256, an unknown key). */
DAGR_API dagr_status_t dagr_dtable_sort(dagr_dtable_t *t, int nkeys, const char *const *keys,
                                        const bool *descending, dagr_dtable_t **out);

/* ------------------------------------------------------------------------------------------
 * Writing out
 * ---------------------------------------------------------------------------------------- */

/* CSV output options. Fill with dagr_csv_write_opts_init. Fields holding the delimiter, a
 * quote, CR or LF (and empty strings) are quoted; nulls are written as null_text. Floats
 * are written with the shortest text that reads back to the same double. Timestamps as
 * 2024-01-02T03:04:05.123456Z (the fraction when not 0). */
typedef struct dagr_csv_write_opts {
    char delim;            /* ',' */
    bool header;           /* true */
    const char *null_text; /* "" */
    bool per_partition;    /* false: one file, the ranks writing their parts into it at once;
                              true: one file per partition, path being a printf pattern with
                              one %d (the partition), e.g. "out/part-%05d.csv" */
} dagr_csv_write_opts_t;

/* Fills *o with the defaults above. Local. */
DAGR_API void dagr_csv_write_opts_init(dagr_csv_write_opts_t *o);

/* Writes t as CSV. Logically collective: it inserts the tasks and returns; the file is
 * complete after the next dagr_wait_all (which reports DAGR_ERR_IO naming the file if a write
 * failed). One file: each partition is formatted on its rank and written at its offset by
 * that rank (pwrite; only the sizes travel), the file created or truncated first. Per
 * partition: file p holds partition p's rows, each with the header when there is one. Floats
 * print as "inf", "-inf", "nan" when not finite; a string equal to null_text reads back as
 * null (read_csv's null markers match quoted fields too). A pending read of the same file
 * must have finished (waited for) before it is written over. Errors: DAGR_ERR_ARG (NULL
 * arguments, a delimiter that is NUL, a quote, CR or LF, a null_text holding the delimiter,
 * a quote, CR or LF, a pattern without exactly one %d conversion (flags and width allowed,
 * e.g. %05d) or with another conversion than %% when per_partition). */
DAGR_API dagr_status_t dagr_dtable_write_csv(dagr_dtable_t *t, const char *path,
                                             const dagr_csv_write_opts_t *opts);

/* Saves t into group `group` (created with its parents, or replaced when it is a group) of
 * the HDF5 file path (created when missing), one 1-D dataset per column named as the column:
 * int64, float64, bool (uint8 0/1), timestamps (int64 microseconds, attribute "unit" =
 * "us since 1970-01-01T00:00:00Z") and strings as variable-length UTF-8; a column holding
 * nulls gets a companion uint8 dataset "<column>.valid" (1: not null; the null rows hold 0,
 * 0.0, false or ""); the group's attribute "columns" lists the column names in order.
 * Readable with h5py: f[group]["fare"][()]. Fixed-width columns are written in parallel
 * (MPI-IO, collective); strings, which HDF5 1.10 cannot write through MPI-IO, by each rank
 * in turn. Collective (waits). Errors: DAGR_ERR_ARG (NULL or differing arguments, group "/",
 * a column name with '/', a column "<c>.valid" beside a column c with nulls, an existing
 * object there that is not a group), DAGR_ERR_IO, DAGR_ERR_FORMAT (path is not HDF5). */
DAGR_API dagr_status_t dagr_dtable_save(dagr_dtable_t *t, const char *path, const char *group);

/* Loads a table that dagr_dtable_save wrote (or any group of equal-length 1-D datasets:
 * integers -> int64 (uint8 -> bool, nonzero true; int64 with a "unit" attribute ->
 * timestamp), floats -> float64, strings (variable or fixed length) -> string; the columns
 * in the order of the "columns" attribute, else in name order, "<c>.valid" datasets giving
 * c's nulls) into ranks x threads partitions of even row counts; the row count is then known
 * (dagr_join_opts_t.broadcast). Collective. Errors: DAGR_ERR_ARG (NULL arguments),
 * DAGR_ERR_IO (no such file), DAGR_ERR_FORMAT (no such group, no dataset, datasets that
 * are not 1-D, of other types or of different lengths). */
DAGR_API dagr_status_t dagr_dtable_load(dagr_ctx_t *ctx, const char *path, const char *group,
                                        dagr_dtable_t **out);

/* The numeric columns named (int64, float64, bool as 0/1, timestamps as microseconds) as an
 * nrows x ncols DArray of dtype DAGR_DOUBLE or DAGR_FLOAT, tiles mb x nb on grid (row i of
 * the table in row i, in partition order), for dagr_gels and friends. Collective (it waits
 * for the row count). Errors: DAGR_ERR_ARG (NULL arguments, an unknown or string column, a
 * bad dtype, tile size or grid); a null value is DAGR_ERR_ARG at the next wait, naming the
 * column and row. */
DAGR_API dagr_status_t dagr_dtable_to_darray(dagr_dtable_t *t, int ncols, const char *const *names,
                                             dagr_dtype_t dtype, int64_t mb, int64_t nb,
                                             dagr_grid_t grid, dagr_darray_t **out);

#ifdef __cplusplus
}
#endif

#endif
