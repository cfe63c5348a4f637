/* DTable's CSV reader core (private to dtable/): the pure parts of read_csv, without MPI and
 * without the runtime, which the table layer calls from its tasks. Every function here is
 * Local. csv.c's opening comment explains the algorithm; in short:
 *
 *   1. A small sample of the file's start, identical on every rank, gives the columns' names
 *      and types (dt_csv_header, dt_csv_infer), unless the caller gives the types.
 *   2. The file is cut into byte ranges at arbitrary offsets, one per rank. Each rank scans its
 *      range (dt_csv_scan) speculatively from both quote states; the ranks allgather the small
 *      dt_csv_scan_t results and each runs dt_csv_resolve on them, identically, to learn where
 *      the first and the last record starting in every range begin.
 *   3. Each rank reads on past its range's end until its last record closes (dt_csv_record_end,
 *      or directly up to the next range's first record start) and parses the records that
 *      start in its range into columns (dt_csv_parse).
 *
 * The dialect: RFC 4180. Fields are separated by opts.delim; a field that starts with
 * opts.quote is quoted and may hold the delimiter, CR, LF and doubled quotes (""), which read
 * as one quote; it must be followed by a delimiter or the record's end. A quote anywhere else
 * in an unquoted field, or any other byte after a closing quote, is an error (this strictness
 * is what lets step 2 be exact, see csv.c). Records end at LF or CRLF outside quotes (a lone
 * CR is data); a final record without a newline counts. Blank lines (empty, or a lone CR
 * before LF) are skipped, as pandas does, unless the table has exactly one column: there a
 * blank line is a record of one empty (null) field. With opts.header the file's first line
 * is the header, whatever it holds.
 *
 * Values: an empty unquoted field, and a field whose text equals one of opts.nulls (quoted
 * or not), is null in every column type; a quoted empty field ("") is the empty string in a
 * string column and null in the others. Conversions are strict (no surrounding spaces):
 *   int64      [+-]digits, out of range is an error;
 *   float64    strtod's syntax (decimal and hexadecimal, exponents, inf, infinity, nan),
 *              always with '.' as the decimal point whatever the process's locale; values
 *              beyond double's range read as +-inf;
 *   bool       true, false, 1, 0 in any case;
 *   timestamp  YYYY-MM-DD or YYYY-MM-DD{T| }HH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM], a time without
 *              zone being UTC, to microseconds since 1970-01-01T00:00:00Z (digits past the
 *              sixth fractional one are dropped);
 *   string     the field's bytes, unquoted and de-doubled; they must be valid UTF-8.
 *
 * Errors: functions return DT_CSV_OK (0) or a negative DT_CSV_E* code and, for a format
 * error, write a message into err (errlen bytes, may be 0). Parse errors read like
 * "record 12 (byte 4711): column 3 ('fare'): 'abc' is not a float64": records are numbered
 * from 1 among the data records of the call (blank lines and the header not counted), the
 * byte is the record's first byte (relative to the file when the caller passes its range's
 * offset as base), columns from 0; the caller adds the file's name. Out-parameters are set
 * only on success. */
#ifndef DAGR_DTABLE_CSV_H
#define DAGR_DTABLE_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "column.h"

enum {
    DT_CSV_OK = 0,
    DT_CSV_EFORMAT = -1, /* malformed CSV, a value that does not convert, bad options */
    DT_CSV_ENOMEM = -2,
    DT_CSV_EMORE = -3, /* the buffer ends before the record needed is complete: read more */
};

typedef struct dt_csv_opts {
    char delim;               /* ',' */
    char quote;               /* '"' */
    bool header;              /* true: the first line names the columns */
    const char *const *nulls; /* strings read as null, e.g. "NA"; NULL when nnulls is 0 */
    int nnulls;               /* 0 */
    int64_t line_base;        /* 0: messages name records ("record 12 (byte 4711)"); > 0: the
                                 line number in the file of dt_csv_parse's first byte (begin),
                                 and messages name lines ("line 40 (byte 4711)") */
} dt_csv_opts_t;

/* Fills o with the defaults above. Local. */
void dt_csv_opts_init(dt_csv_opts_t *o);

/* What dt_csv_scan learns of one byte range, for each state the range may start in: index 0
 * when its first byte is outside quotes, 1 when inside a quoted field. Plain data, the same
 * on every rank: allgather it as bytes. */
typedef struct dt_csv_scan {
    int64_t len;            /* the range's length */
    bool end_in_quotes[2];  /* whether the byte after the range is inside quotes */
    bool ends_record[2];    /* whether the range's last byte ends a record (an LF outside
                               quotes), so that the next range starts one */
    int64_t first_start[2]; /* offset in the range of the first byte after a record-ending LF,
                               -1 when none lies inside the range */
    int64_t last_start[2];  /* likewise the last one */
    int64_t nlf;            /* LF bytes in the range, quoted or not (for line numbers) */
} dt_csv_scan_t;

/* Scans buf[0, len), one byte range of a file, from both quote states and fills *out. Never
 * fails: a malformed file is found by dt_csv_parse. Local; allocates nothing. */
void dt_csv_scan(const char *buf, size_t len, const dt_csv_opts_t *opts, dt_csv_scan_t *out);

/* Chains the scans of a file's nchunks consecutive ranges, in file order (range 0 starting at
 * byte 0, outside quotes; range k starting in the state range k-1 ends in). For each range,
 * first_start[k] and last_start[k] receive the offsets, relative to the range, of the first
 * and the last record that start in it, or -1 (both) when none does. A record belongs to the
 * range it starts in. With opts->header the file's first record is the header and starts no
 * range's records. Empty ranges are allowed. Returns whether the file ends outside quotes
 * (false: an unterminated quoted field, which dt_csv_parse reports). Local; every rank
 * running it on the same scans gets the same answer. */
bool dt_csv_resolve(const dt_csv_scan_t *scans, int nchunks, const dt_csv_opts_t *opts,
                    int64_t *first_start, int64_t *last_start);

/* Where the record that starts at buf[pos] ends: the offset just past its LF, scanning from
 * pos in the given quote state (false at a record's start). Returns -1 when buf[0, len) ends
 * first: read more, or, at the file's end, the record ends at len. Local. */
int64_t dt_csv_record_end(const char *buf, size_t len, size_t pos, const dt_csv_opts_t *opts,
                          bool in_quotes);

/* The column names: with opts->header, the fields of the file's first record, read with the
 * quoting rules (an empty name becomes "c<i>"); without, "c0", "c1", ... for as many
 * columns as the first record has fields. buf[0, len) is the file's start, at_eof whether
 * it is the whole file. *header_end receives the offset where the data records start (past
 * the header line; 0 without header). *names is a malloc'ed array of *ncols malloc'ed
 * strings, the caller's to free (dt_csv_names_free). Errors: DT_CSV_EMORE (the first record
 * does not end in buf and !at_eof), DT_CSV_EFORMAT (bad quoting, bad options, an empty file
 * without header), DT_CSV_ENOMEM. Local. */
int dt_csv_header(const char *buf, size_t len, bool at_eof, const dt_csv_opts_t *opts, int *ncols,
                  char ***names, size_t *header_end, char *err, size_t errlen);

/* Frees names[0, n) and names, as dt_csv_header and dt_csv_infer allocate them. Tolerates
 * NULL. Local. */
void dt_csv_names_free(char **names, int n);

/* Infers the columns from sample[0, len), the file's first bytes (at_eof: the whole file):
 * the names as dt_csv_header gives them, and for each column the first of bool, int64,
 * float64, timestamp that reads every non-null value of the sample's complete data records,
 * else string; a column with no non-null value is string. Records cut by the sample's end
 * are ignored (unless at_eof), so the same sample gives the same answer on every rank.
 * *types (malloc'ed, *ncols entries) and *names (as dt_csv_header) are the caller's.
 * Errors: those of dt_csv_header, DT_CSV_EFORMAT for a malformed sampled record (the message
 * as dt_csv_parse's). Local. */
int dt_csv_infer(const char *sample, size_t len, bool at_eof, const dt_csv_opts_t *opts, int *ncols,
                 dt_type_t **types, char ***names, char *err, size_t errlen);

/* Parses the records that start in buf[begin, end_limit) into ncols columns of the given
 * types, filling cols_out[0, ncols) (column.h's layout; the caller frees each with
 * dt_column_free) and *nrows. begin must be a record's start (dt_csv_resolve's first_start);
 * buf[end_limit, len) holds the bytes that complete the last of these records: the record
 * may end at len only at the file's end (its last record, without newline). base is buf's
 * offset in the file, for messages; names (NULL allowed) name the columns in them. Errors:
 * DT_CSV_EFORMAT (a record with another number of fields than ncols, bad quoting, an
 * unterminated quoted field, a value that does not convert, bad options or arguments),
 * DT_CSV_ENOMEM; nothing is allocated then. Local. */
int dt_csv_parse(const char *buf, size_t len, size_t begin, size_t end_limit, int64_t base,
                 const dt_csv_opts_t *opts, int ncols, const dt_type_t *types,
                 const char *const *names, dt_column_t *cols_out, int64_t *nrows, char *err,
                 size_t errlen);

#endif
