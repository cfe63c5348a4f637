/* One table partition in one buffer (private to dtable/): what a partition's data handle
 * holds, so that the runtime can move, spill, checkpoint and fetch it as plain bytes. A
 * partition describes itself (its schema and row count are in it), so a task needs nothing
 * but the buffer.
 *
 * Layout, every offset from the buffer's start and every section 64-byte aligned:
 *   dt_part_hdr_t                       magic, ncols, nrows, where the names are
 *   dt_part_col_t[ncols]                per column: type, and where its buffers are
 *   names                               ncols NUL-terminated UTF-8 strings one after another
 *   per column: validity bitmap (when some row is null), values, string offsets (n + 1
 *   int64), as column.h lays them out.
 * A 0-byte buffer is a partition of no row and no column (a handle no task wrote yet).
 * Numbers are in the host's byte order: dagr's ranks share one architecture. */
#ifndef DAGR_DTABLE_PART_H
#define DAGR_DTABLE_PART_H

#include "column.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_PART_MAGIC 0x31505444u /* "DTP1" */

typedef struct dt_part_hdr {
    uint32_t magic;
    uint32_t ncols;
    int64_t nrows;
    uint64_t names_off, names_bytes;
} dt_part_hdr_t;

typedef struct dt_part_col {
    uint32_t type;
    uint32_t has_valid;
    uint64_t valid_off, values_off, offsets_off; /* offsets_off: strings only, else 0 */
    uint64_t nbytes;                             /* strings: the bytes of their values */
} dt_part_col_t;

/* A partition read in place: cols point into the buffer (never free them one by one). */
typedef struct dt_part {
    int ncols;
    int64_t nrows;
    const char **names; /* ncols entries, into the buffer */
    dt_column_t *cols;  /* ncols entries, buffers into the buffer */
    void *copy;         /* an aligned copy when the buffer given was not 8-byte aligned */
} dt_part_t;

/* The bytes a partition of these ncols columns of nrows rows takes. */
size_t dt_part_size(int ncols, const char *const *names, const dt_column_t *cols);

/* Writes the partition into buf (8-byte aligned, dt_part_size bytes, zero-filled or not).
 * Every column must have the same number of rows. */
void dt_part_write(void *buf, int ncols, const char *const *names, const dt_column_t *cols);

/* Reads buf[0, bytes) as a partition into *p, checking that every offset and size lies in the
 * buffer and fits the types (a torn or foreign buffer gives an error, never a wild read).
 * Returns 0, or -1 with a message in err; -2 when out of memory. Free with dt_part_free. */
int dt_part_view(const void *buf, size_t bytes, dt_part_t *p, char *err, size_t errlen);
void dt_part_free(dt_part_t *p);

/* The rows rows[0, n) of the columns (each row an index into every column; rows NULL: rows
 * 0 .. n-1) as a partition, written straight from the columns, with no column made in
 * between: dt_part_size_rows measures it (nulls[j]: whether a selected row of column j is
 * null, sbytes[j]: its selected string bytes; ncols entries each, filled), then
 * dt_part_write_rows writes it with those. */
size_t dt_part_size_rows(int ncols, const char *const *names, const dt_column_t *cols,
                         const int64_t *rows, int64_t n, bool *nulls, size_t *sbytes);
void dt_part_write_rows(void *buf, int ncols, const char *const *names, const dt_column_t *cols,
                        const int64_t *rows, int64_t n, const bool *nulls, const size_t *sbytes);

/* A partition whose columns the caller fills in place, with no column made in between:
 * cols[j].type set, every column of n rows, nulls[j] whether column j has a bitmap,
 * sbytes[j] its string bytes. dt_part_size_placed measures it; dt_part_place writes the
 * header and the names into buf (that many bytes) and points cols[j]'s buffers into it
 * (valid zeroed, or NULL without nulls[j]), for the caller to fill every value, every
 * offset (offsets[0] = 0) and every validity bit that is set. */
size_t dt_part_size_placed(int ncols, const char *const *names, const dt_column_t *cols, int64_t n,
                           const bool *nulls, const size_t *sbytes);
void dt_part_place(void *buf, int ncols, const char *const *names, dt_column_t *cols, int64_t n,
                   const bool *nulls, const size_t *sbytes);

/* The rows of a partition buffer without reading the rest (0 for an empty buffer), or -1 when
 * the buffer is not a partition. */
int64_t dt_part_nrows(const void *buf, size_t bytes);

/* Bytes one column's buffers take (bitmap, values, offsets, strings), for sizing. */
size_t dt_column_bytes(const dt_column_t *c);

#endif
