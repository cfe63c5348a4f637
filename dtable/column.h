/* DTable's in-memory columns (private to dtable/): what one table partition holds, column by
 * column, Arrow-like. The CSV reader (csv.c) builds them, the expression engine (expr.c)
 * reads and makes them, and the table layer (to come) stores a partition's columns in one
 * data handle whose size its writing task decides (dagr_data_create_dynamic).
 *
 * A column of n rows:
 *   - valid: a bitmap of (n + 7) / 8 bytes, bit i (valid[i / 8] >> (i % 8) & 1) set when row i
 *     is not null; NULL when no row is null.
 *   - DT_INT64, DT_TIMESTAMP: values is int64_t[n] (timestamps: microseconds since
 *     1970-01-01T00:00:00Z); DT_FLOAT64: double[n]; DT_BOOL: uint8_t[n], 0 or 1.
 *   - DT_STRING: values is the UTF-8 bytes of every row one after the other (no terminators),
 *     offsets is int64_t[n + 1], row i is values[offsets[i] .. offsets[i + 1]), offsets[0] = 0;
 *     nbytes = offsets[n].
 * A null row's value is unspecified but readable (0 / 0.0 / false / the empty string), so
 * column-at-a-time loops need no branch on validity.
 * Every buffer is malloc'ed and owned by the column (dt_column_free). */
#ifndef DAGR_DTABLE_COLUMN_H
#define DAGR_DTABLE_COLUMN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum dt_type {
    DT_INT64 = 0,
    DT_FLOAT64 = 1,
    DT_BOOL = 2,
    DT_STRING = 3,
    DT_TIMESTAMP = 4,
} dt_type_t;

typedef struct dt_column {
    dt_type_t type;
    int64_t n;
    uint8_t *valid;   /* NULL: every row valid */
    void *values;     /* see above */
    int64_t *offsets; /* DT_STRING only, n + 1 entries */
    size_t nbytes;    /* DT_STRING only: offsets[n] */
} dt_column_t;

/* Whether row i of c is not null. */
static inline bool dt_valid(const dt_column_t *c, int64_t i) {
    return !c->valid || (c->valid[i >> 3] >> (i & 7) & 1);
}

/* Frees c's buffers and zeroes it (the type stays). Tolerates a zeroed column. */
void dt_column_free(dt_column_t *c);

/* The n bytes at p as a timestamp, into UTC microseconds since 1970-01-01: YYYY-MM-DD, or
 * YYYY-MM-DD{T| }HH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM] (fractions beyond microseconds are cut;
 * no offset means UTC). The one syntax of CSV values and of expressions' ts() literals. False
 * when it is not one (a date that does not exist included). */
bool dt_parse_timestamp(const char *p, size_t n, int64_t *out);

/* Where big buffers (column values, scratch arrays) come from: in the library, where its data
 * buffers live (the data pool, on huge pages, which gives pages no buffer uses back to the
 * system: a freed bucket's memory then serves the next partition; lib/module.h's data_buf_*,
 * which also ask for huge pages when the pool is off); malloc's in programs built with
 * dtable's sources alone (tests, fuzz targets). dt_free and dt_realloc take either kind and
 * malloc's, so every buffer of dtable/ is freed with dt_free. */
typedef struct dt_allocator {
    void *(*alloc)(size_t n);
    void *(*realloc)(void *p, size_t n);
    void (*free)(void *p);
} dt_allocator_t;
extern dt_allocator_t dt_mem;

/* n bytes (at least 1). */
static inline void *dt_alloc(size_t n) {
    return dt_mem.alloc(n ? n : 1);
}
static inline void *dt_realloc(void *p, size_t n) {
    return dt_mem.realloc(p, n ? n : 1);
}
static inline void dt_free(void *p) {
    dt_mem.free(p);
}

/* us as text, 2024-01-02T03:04:05Z, with .ffffff when the microseconds are not 0: a form
 * dt_parse_timestamp reads back to us. Returns the length written (< 40). */
int dt_format_timestamp(int64_t us, char out[40]);

/* "int64", "float64", "bool", "string", "timestamp". */
const char *dt_type_name(dt_type_t t);

#endif
