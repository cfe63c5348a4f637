/* DTable's expression engine (private to dtable/): filter predicates and computed columns
 * written as a string, parsed once against a schema, evaluated a column at a time.
 * Pure local code, no MPI and no dagr_status_t: the table layer parses at the call and
 * evaluates per partition inside tasks. Every function here is *Local*.
 *
 * Grammar (keywords and function names case-insensitive, whitespace free):
 *
 *   expr    := or
 *   or      := and { 'or' and }
 *   and     := not { 'and' not }
 *   not     := 'not' not | cmp
 *   cmp     := add { cmpop add | 'is' ['not'] 'null' }      left-associative
 *   cmpop   := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
 *   add     := mul { ('+' | '-') mul }
 *   mul     := unary { ('*' | '/' | '%') unary }
 *   unary   := '-' unary | primary
 *   primary := INTEGER | DECIMAL | STRING | 'true' | 'false' | 'null'
 *            | NAME '(' [expr { ',' expr }] ')' | NAME | QUOTED_NAME | '(' expr ')'
 *
 *   INTEGER  digits (must fit int64; -9223372036854775808 is accepted after unary '-')
 *   DECIMAL  digits with a '.' and/or an exponent: 1.5, .5, 2., 1e3, 2.5E-2
 *   STRING   'single-quoted', '' stands for one quote
 *   NAME     [A-Za-z_][A-Za-z0-9_]*, a column (exact, case-sensitive match) unless a keyword
 *   QUOTED_NAME  "double-quoted", any column name ("" stands for one double quote)
 *
 * Functions: abs(x), sqrt(x), floor(x), ceil(x), round(x) (numeric), lower(s), upper(s)
 * (ASCII letters only, as SQL's defaults), length(s) (UTF-8 characters, int64),
 * coalesce(a, b), and ts('2024-01-02T03:04:05Z'), a timestamp literal: its argument must be a
 * string literal in the syntax of CSV timestamps (dt_parse_timestamp, column.h:
 * 'YYYY-MM-DD' or 'YYYY-MM-DD{T| }HH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM]', UTC when no offset is
 * given, fractions beyond microseconds cut).
 *
 * Types (SQL-like, checked at parse time):
 *   - int64 + - * int64 -> int64; an overflowing row is null (not wrapped, not an error: an
 *     error would be awkward mid-partition). int64 / int64 -> float64, null when the divisor
 *     is 0. int64 % int64 -> int64 (sign of the dividend, as C and SQL), null when the divisor
 *     is 0. Unary - and abs() of INT64_MIN -> null.
 *   - int64 mixed with float64 -> float64. float64 arithmetic follows IEEE (x / 0 -> inf or
 *     nan, sqrt(-1) -> nan); float64 % is fmod.
 *   - timestamp - timestamp -> int64 microseconds; timestamp + int64, int64 + timestamp,
 *     timestamp - int64 -> timestamp (overflow -> null).
 *   - floor/ceil/round of int64 -> the same int64; of float64 -> float64 (round: halves
 *     away from zero). sqrt -> float64. abs keeps the type.
 *   - comparisons -> bool: numbers with numbers (int64 against float64 as doubles), strings
 *     bytewise (UTF-8 order, a prefix first), bools (false < true), timestamps.
 *   - 'and', 'or', 'not' take bools. coalesce(a, b) takes two values of one type (int64 and
 *     float64 mix as float64).
 *   - null: any operator or function with a null operand gives null, except: 'is [not]
 *     null' (never null), coalesce, and three-valued logic (false and null = false,
 *     true or null = true, not null = null). The literal null takes the type its context
 *     asks for: the other operand's (but int64 in timestamp + null, null + timestamp and
 *     timestamp - null), the function's argument type, bool alone or in coalesce(null, null).
 *   - A filter keeps the rows where the predicate is true (not null).
 *
 * Expressions nest at most 1000 levels deep (parentheses, function arguments, 'not', unary
 * '-', and chains of binary operators, whose trees are as deep as they are long), SQLite's
 * default: deeper is a parse error "expression nested too deeply (more than 1000 levels)",
 * never a stack overflow.
 *
 * Error messages name the problem and where it is found (a 0-based byte offset):
 *   "expression 'fare > ' at 7: expected a value"
 *   "expression 'fair > 1' at 0: unknown column 'fair' (columns: fare, tip)"
 *   "expression 'name > 3' at 5: cannot compare string 'name' with int64" */
#ifndef DAGR_DTABLE_EXPR_H
#define DAGR_DTABLE_EXPR_H

#include "column.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dt_expr dt_expr_t;

/* Parses text against a schema of ncols columns (names[i], types[i]) and type-checks it.
 * Returns the compiled expression (owned by the caller: dt_expr_free), or NULL with a message
 * in err (errlen bytes, always terminated when errlen > 0; err may be NULL when errlen is 0)
 * for a syntax or type error or a failed allocation. The schema is copied as needed: names
 * need not outlive the call. */
dt_expr_t *dt_expr_parse(const char *text, int ncols, const char *const *names,
                         const dt_type_t *types, char *err, size_t errlen);

/* Frees e. Tolerates NULL. */
void dt_expr_free(dt_expr_t *e);

/* The type of e's result. */
dt_type_t dt_expr_type(const dt_expr_t *e);

/* The schema indices of the columns e reads, ascending and distinct; *n receives their count
 * (possibly 0). Borrowed: valid until dt_expr_free(e). */
const int *dt_expr_columns(const dt_expr_t *e, int *n);

/* Evaluates e over one partition of nrows rows. cols is indexed by schema position; only the
 * columns dt_expr_columns lists are read (others may be zeroed), each must have e's schema
 * type and nrows rows. On success returns 0 and fills *out with a new column of
 * dt_expr_type(e) and nrows rows (owned by the caller: dt_column_free; no bitmap when no row
 * is null; null rows hold 0 / 0.0 / false / the empty string). On error returns -EINVAL (a
 * column of the wrong type or length) or -ENOMEM, writes err, and leaves *out untouched. */
int dt_expr_eval(const dt_expr_t *e, const dt_column_t *cols, int64_t nrows, dt_column_t *out,
                 char *err, size_t errlen);

/* The rows where pred (a DT_BOOL column) is true and not null, ascending, written to rows_out
 * (room for pred->n entries); returns their count, or -EINVAL when pred is not a bool column. */
int64_t dt_filter_select(const dt_column_t *pred, int64_t *rows_out);

/* Gathers rows rows[0 .. n) of in (each in [0, in->n), repeats allowed) into *out, a new
 * column of in's type (owned by the caller), strings and validity included. Returns 0, or
 * -EINVAL for a row out of range or n < 0, or -ENOMEM; *out is set only on success. */
int dt_column_take(const dt_column_t *in, const int64_t *rows, int64_t n, dt_column_t *out);

#endif
