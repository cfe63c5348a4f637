/* Internal declarations shared by the files of dtable/. Public headers never include this.
 *
 * A table is its schema (the same on every rank) and nparts partition handles, partition p
 * owned by rank p % size; each is a dynamic-size handle holding one part.h buffer, written
 * by exactly one task per table. Operations make new handles (never write an input's), so
 * tables share nothing and a chain needs no wait.
 *
 * Tasks get what they need by value in their argument block (dt_args_t: strings and
 * numbers packed one after another), never a pointer to call-time state: the state would
 * have to outlive tasks whose completion the call never sees. Partitions describe their own
 * schema, so a task re-parses an expression against its input partition (microseconds,
 * against a partition's milliseconds of work). */
#ifndef DAGR_DTABLE_IMPL_H
#define DAGR_DTABLE_IMPL_H

#include <dagr/dagr.h>
#include <dagr/dtable.h>

#include <stdbool.h>

#include "column.h"
#include "module.h" /* lib/'s interface for modules, errors included */
#include "part.h"

typedef struct dt_args dt_args_t;

struct dagr_dtable {
    dagr_ctx_t *ctx;
    int ncols;
    char **names;
    dt_type_t *types;
    int nparts;
    dagr_data_t **parts; /* partition p at parts[p], owned by rank p % size */
    int64_t known_rows;  /* the row count when known at the call (after a wait), else -1 */
};

/* ---- table.c ---- */

/* A new table of ncols columns (names and types copied) over nparts new dynamic handles.
 * Logically collective. */
dagr_status_t dt_table_new(dagr_ctx_t *ctx, int ncols, const char *const *names,
                           const dt_type_t *types, int nparts, dagr_dtable_t **out);
/* The rank partition p of a table with nparts partitions lives on. */
int dt_part_rank(dagr_ctx_t *ctx, int p);
/* Argument checks with messages naming `what`. */
dagr_status_t dt_check(const dagr_dtable_t *t, const char *what);
/* The index of column name in t, or DAGR_ERR_ARG naming the columns t has. */
dagr_status_t dt_find_col(const dagr_dtable_t *t, const char *name, const char *what, int *j);
/* Collective: all ranks return the lowest failing rank's status and message. */
dagr_status_t dt_agree(dagr_ctx_t *ctx, dagr_status_t mine);
/* Collective (waits): cnt[p] = partition p's rows, on every rank (fetch.c); sets
 * t->known_rows. */
dagr_status_t dt_count_parts(dagr_dtable_t *t, int64_t *cnt);
/* The default partition count of a new table: ranks x worker threads. */
int dt_default_parts(dagr_ctx_t *ctx);

/* A new table of the schema given, one task of kernel k per partition of t reading it
 * (access 0) and writing the new one (access 1), on its rank, with arguments a.
 * DAGR_ERR_ARG when a overflowed. Logically collective. */
dagr_status_t dt_map_parts(dagr_dtable_t *t, const dagr_kernel_t *k, const dt_args_t *a, int ncols,
                           char *const *names, const dt_type_t *types, dagr_dtable_t **out);

/* ---- task helpers (table.c) ---- */

/* Views input partition i of a task (dt_part_view); on failure fails the task and returns
 * false. */
bool dt_task_view(const dagr_task_view_t *task, int i, dt_part_t *p);
/* Writes a partition of ncols columns into output i of a task (dagr_task_resize, then
 * dt_part_write); on failure fails the task and returns false. */
bool dt_task_write(const dagr_task_view_t *task, int i, int ncols, const char *const *names,
                   const dt_column_t *cols);
/* Writes rows rows[0, n) of the columns (rows NULL: the first n) into output i of a task,
 * gathered straight into the partition (no intermediate columns); on failure fails the task
 * and returns false. */
bool dt_task_write_rows(const dagr_task_view_t *task, int i, int ncols, const char *const *names,
                        const dt_column_t *cols, const int64_t *rows, int64_t n);
/* Makes output i of a task a partition of ncols columns of n rows for the caller to fill
 * in place (dt_part_place: cols[j].type set; nulls and sbytes as there); on failure fails
 * the task and returns false. */
bool dt_task_place(const dagr_task_view_t *task, int i, int ncols, const char *const *names,
                   dt_column_t *cols, int64_t n, const bool *nulls, const size_t *sbytes);
/* Fails the task for an error code of column.h's helpers (-ENOMEM, -EINVAL) or csv/expr
 * messages: DAGR_ERR_NOMEM for -ENOMEM, else status with msg. Returns DAGR_TASK_ERROR. */
dagr_task_result_t dt_task_fail_code(const dagr_task_view_t *task, int code, dagr_status_t status,
                                     const char *msg);

/* ---- argument blocks ---- */

/* Packs a task's arguments: fixed fields first (dt_args_put), then strings (dt_args_str).
 * overflow is set, instead of writing, once DAGR_MAX_ARGS would be passed: the call
 * returns DAGR_ERR_ARG naming what was too long. */
struct dt_args {
    char buf[DAGR_MAX_ARGS];
    size_t n;
    bool overflow;
};
void dt_args_put(dt_args_t *a, const void *p, size_t n);
void dt_args_str(dt_args_t *a, const char *s);
/* A schema (ncols, types, names) into an argument block; DAGR_ERR_ARG when it does not fit. */
dagr_status_t dt_args_schema(dt_args_t *a, int ncols, char *const *names, const dt_type_t *types);
/* Reading back, in the same order: a cursor over the task's args. */
typedef struct dt_argr {
    const char *p, *end;
} dt_argr_t;
void dt_argr_init(dt_argr_t *r, const dagr_task_view_t *task);
void dt_argr_get(dt_argr_t *r, void *p, size_t n);
const char *dt_argr_str(dt_argr_t *r);
/* Reads a schema dt_args_schema wrote: *names (into the args) and *types are malloc'ed
 * arrays (free both). False when out of memory. */
bool dt_argr_schema(dt_argr_t *r, int *ncols, const char ***names, dt_type_t **types);
/* Inserts a task writing an empty partition p of t's schema. Logically collective. */
dagr_status_t dt_write_empty(dagr_dtable_t *t, int p);

/* ---- shuffle.c: rows to other partitions ---- */

/* Sends every row of each partition of t to one of nout destination partitions, as route
 * decides, and returns the buckets: bucket (p, q) (the rows of input p for destination q)
 * is (*buckets)[p * nout + q], a new dynamic handle owned by destination q's rank
 * (dt_part_rank(ctx, q)), written by one task per input partition on its rank. Buckets keep
 * t's schema and the rows' order. The caller inserts the tasks reading them, then frees the
 * array with dt_buckets_free (which destroys the handles; tasks inserted still run).
 *
 * route(in, args, args_size, nextra, extra, nout, dest, err) fills dest[0, in->nrows) with
 * each row's destination in [0, nout); args is a copy of route_args, extra the views of the
 * nextra handles `extra` (read by every map task: a sort's splitters). It returns 0, or
 * nonzero with a message in err (256 bytes), which fails the task. Logically collective. */
typedef int (*dt_route_fn)(const dt_part_t *in, const void *args, size_t args_size, int nextra,
                           const dt_part_t *extra, uint32_t nout, uint32_t *dest, char *err);
dagr_status_t dt_shuffle(dagr_dtable_t *t, int nout, dt_route_fn route, const void *route_args,
                         size_t route_args_size, int nextra, dagr_data_t *const *extra,
                         dagr_data_t ***buckets);
void dt_buckets_free(const dagr_dtable_t *t, int nout, dagr_data_t **buckets);
/* New bucket handles for nparts sources and nout destinations: (p, q) at p * nout + q, on
 * q's rank; free with dt_buckets_free. Logically collective. */
dagr_status_t dt_buckets_new(dagr_ctx_t *ctx, int nparts, int nout, dagr_data_t ***buckets);
/* The shuffle's map step inside a task that made its own rows: row i of the columns (n rows)
 * to the task's output first_out + dest[i], in input order within each output; every one of
 * the nout outputs is written (empty or not). False when it failed the task. */
bool dt_scatter(const dagr_task_view_t *task, int first_out, int nout, int ncols,
                const char *const *names, const dt_column_t *cols, int64_t n, const uint32_t *dest);

/* ---- hash.c ---- */

/* Hashes rows [0, n) of the key columns keys[0, nkeys) of cols into h[0, n): equal keys
 * (nulls equal to nulls, -0.0 to 0.0, every NaN to every NaN) hash alike, whatever
 * partition they are in. */
void dt_hash_rows(const dt_column_t *cols, int nkeys, const int *keys, int64_t n, uint64_t *h);
/* The same for rows [i0, i0 + m) into h[0, m): i0 a multiple of 8, at most
 * DT_HASH_WINDOW_MAX key columns (64 keys and the value column of a group-by's distinct
 * pairs). */
#define DT_HASH_WINDOW_MAX 65
void dt_hash_window(const dt_column_t *cols, int nkeys, const int *keys, int64_t i0, int64_t m,
                    uint64_t *h);
/* Whether row i of a and row k of b are equal on the keys (nulls_equal: null = null). */
bool dt_keys_equal(const dt_column_t *a, const int *akeys, int64_t i, const dt_column_t *b,
                   const int *bkeys, int64_t k, int nkeys, bool nulls_equal);
/* The route for a hash shuffle: args is an int32 count and that many int32 key column
 * indices; a row goes to the destination its keys' hash picks (from the hash's high bits, so
 * that hash tables indexed by the low bits stay balanced within a destination). */
int dt_route_hash(const dt_part_t *in, const void *args, size_t args_size, int nextra,
                  const dt_part_t *extra, uint32_t nout, uint32_t *dest, char *err);
/* The destination among nout of a row whose keys hash (dt_hash_rows) to h: dt_route_hash's
 * choice, for a task that has the hashes already. */
static inline uint32_t dt_route_of(uint64_t h, uint32_t nout) {
    return (uint32_t)(((h >> 32) * (uint64_t)nout) >> 32);
}

/* ---- concat: column builders (concat.c) ---- */

/* Appends the rows of src[0, n) (each of dst's type) into one new column *dst (owned). */
int dt_column_concat(const dt_column_t *const *src, int n, dt_type_t type, dt_column_t *dst);

#endif
