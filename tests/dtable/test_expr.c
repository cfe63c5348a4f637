/* Tests of dtable/expr.c: parsing and type errors, every operator and function, nulls and
 * three-valued logic, filters and take, and a randomized comparison against SQLite. */
#include "expr.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- column builders: nulls is NULL or a string of '.' (value) and 'N' (null) per row ---- */

static uint8_t *mk_valid(int64_t n, const char *nulls) {
    if (!nulls) return NULL;
    uint8_t *v = calloc((size_t)(n + 7) / 8 + 1, 1);
    for (int64_t i = 0; i < n; i++)
        if (nulls[i] != 'N') v[i / 8] |= (uint8_t)(1u << (i % 8));
    return v;
}

static dt_column_t col_i(dt_type_t t, int64_t n, const int64_t *v, const char *nulls) {
    dt_column_t c = {.type = t, .n = n, .valid = mk_valid(n, nulls)};
    c.values = malloc((size_t)n * 8 + 1);
    memcpy(c.values, v, (size_t)n * 8);
    return c;
}

static dt_column_t col_f(int64_t n, const double *v, const char *nulls) {
    dt_column_t c = {.type = DT_FLOAT64, .n = n, .valid = mk_valid(n, nulls)};
    c.values = malloc((size_t)n * 8 + 1);
    memcpy(c.values, v, (size_t)n * 8);
    return c;
}

static dt_column_t col_b(int64_t n, const uint8_t *v, const char *nulls) {
    dt_column_t c = {.type = DT_BOOL, .n = n, .valid = mk_valid(n, nulls)};
    c.values = malloc((size_t)n + 1);
    memcpy(c.values, v, (size_t)n);
    return c;
}

static dt_column_t col_s(int64_t n, const char *const *v, const char *nulls) {
    dt_column_t c = {.type = DT_STRING, .n = n, .valid = mk_valid(n, nulls)};
    c.offsets = malloc((size_t)(n + 1) * 8);
    size_t tot = 0;
    for (int64_t i = 0; i < n; i++)
        tot += strlen(v[i]);
    c.values = malloc(tot + 1);
    c.offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        memcpy((char *)c.values + c.offsets[i], v[i], l);
        c.offsets[i + 1] = c.offsets[i] + (int64_t)l;
    }
    c.nbytes = tot;
    return c;
}

/* ---- a fixed schema of 4 rows ---- */

#define NR 4
static const char *const names[] = {"fare", "tip", "passengers", "name",
                                    "flag", "t",   "p2",         "odd name"};
static const dt_type_t types[] = {DT_FLOAT64, DT_FLOAT64,   DT_INT64, DT_STRING,
                                  DT_BOOL,    DT_TIMESTAMP, DT_INT64, DT_INT64};
#define NC 8
static dt_column_t cols[NC];

static void setup(void) {
    static const double fare[NR] = {12.5, 8.0, 20.0, -3.0};
    static const double tip[NR] = {2.5, 0.0, 4.0, 1.0};
    static const int64_t pass[NR] = {1, 2, 3, 4};
    static const char *const name[NR] = {"alice", "Bob", "", "h\xc3\xa9llo"};
    static const uint8_t flag[NR] = {1, 0, 1, 0};
    static const int64_t t[NR] = {0, 1000000, 86400000000LL, -1};
    static const int64_t p2[NR] = {INT64_MAX, INT64_MIN, 0, -7};
    static const int64_t odd[NR] = {5, 6, 7, 8};
    cols[0] = col_f(NR, fare, NULL);
    cols[1] = col_f(NR, tip, ".N..");
    cols[2] = col_i(DT_INT64, NR, pass, NULL);
    cols[3] = col_s(NR, name, "..N.");
    cols[4] = col_b(NR, flag, "...N");
    cols[5] = col_i(DT_TIMESTAMP, NR, t, NULL);
    cols[6] = col_i(DT_INT64, NR, p2, NULL);
    cols[7] = col_i(DT_INT64, NR, odd, NULL);
}

static void teardown(void) {
    for (int k = 0; k < NC; k++)
        dt_column_free(&cols[k]);
}

TestSuite(dtable_expr, .init = setup, .fini = teardown);

static dt_expr_t *parse_ok(const char *text) {
    char err[512];
    dt_expr_t *e = dt_expr_parse(text, NC, names, types, err, sizeof err);
    cr_assert(e, "parse '%s': %s", text, err);
    return e;
}

static dt_column_t eval_ok(const char *text, dt_type_t want) {
    dt_expr_t *e = parse_ok(text);
    cr_assert_eq(dt_expr_type(e), want, "'%s' is %s, want %s", text, dt_type_name(dt_expr_type(e)),
                 dt_type_name(want));
    dt_column_t out;
    char err[512];
    int rc = dt_expr_eval(e, cols, NR, &out, err, sizeof err);
    cr_assert_eq(rc, 0, "eval '%s': %s", text, err);
    dt_expr_free(e);
    cr_assert_eq(out.type, want);
    cr_assert_eq(out.n, NR);
    /* column.h: no bitmap when no row is null; null rows read as zero */
    if (out.valid) {
        bool any = false;
        for (int i = 0; i < NR; i++)
            any |= !dt_valid(&out, i);
        cr_assert(any, "'%s': bitmap present with no null row", text);
    }
    return out;
}

/* Expected results as text per row: "N" for null; otherwise the value ("1"/"0" for bools). */
static void expect(const char *text, dt_type_t want, ...) {
    dt_column_t out = eval_ok(text, want);
    va_list ap;
    va_start(ap, want);
    for (int i = 0; i < NR; i++) {
        const char *w = va_arg(ap, const char *);
        if (strcmp(w, "N") == 0) {
            cr_assert(!dt_valid(&out, i), "'%s' row %d: want null", text, i);
            if (want == DT_STRING)
                cr_assert_eq(out.offsets[i + 1], out.offsets[i]);
            else if (want == DT_BOOL)
                cr_assert_eq(((uint8_t *)out.values)[i], 0);
            else
                cr_assert_eq(((int64_t *)out.values)[i], 0);
            continue;
        }
        cr_assert(dt_valid(&out, i), "'%s' row %d: want %s, got null", text, i, w);
        char got[256];
        switch (want) {
        case DT_INT64:
        case DT_TIMESTAMP:
            snprintf(got, sizeof got, "%lld", (long long)((int64_t *)out.values)[i]);
            break;
        case DT_FLOAT64:
            snprintf(got, sizeof got, "%g", ((double *)out.values)[i]);
            break;
        case DT_BOOL:
            snprintf(got, sizeof got, "%d", ((uint8_t *)out.values)[i]);
            break;
        case DT_STRING:
            snprintf(got, sizeof got, "%.*s", (int)(out.offsets[i + 1] - out.offsets[i]),
                     (char *)out.values + out.offsets[i]);
            break;
        }
        cr_assert_str_eq(got, w, "'%s' row %d: got %s, want %s", text, i, got, w);
    }
    va_end(ap);
    dt_column_free(&out);
}

static void expect_err(const char *text, const char *msg) {
    char err[512];
    dt_expr_t *e = dt_expr_parse(text, NC, names, types, err, sizeof err);
    cr_assert_null(e, "'%s' parsed", text);
    cr_assert_str_eq(err, msg);
}

/* ---- operators per type ---- */

Test(dtable_expr, int_arithmetic) {
    expect("passengers + 1", DT_INT64, "2", "3", "4", "5");
    expect("passengers - 10", DT_INT64, "-9", "-8", "-7", "-6");
    expect("passengers * passengers", DT_INT64, "1", "4", "9", "16");
    expect("passengers / 2", DT_FLOAT64, "0.5", "1", "1.5", "2");
    expect("7 % passengers", DT_INT64, "0", "1", "1", "3");
    expect("-7 % passengers", DT_INT64, "0", "-1", "-1", "-3");
    expect("-passengers", DT_INT64, "-1", "-2", "-3", "-4");
    /* overflow and division by zero are null */
    expect("p2 + 1", DT_INT64, "N", "-9223372036854775807", "1", "-6");
    expect("p2 - 1", DT_INT64, "9223372036854775806", "N", "-1", "-8");
    expect("p2 * 2", DT_INT64, "N", "N", "0", "-14");
    expect("-p2", DT_INT64, "-9223372036854775807", "N", "0", "7");
    expect("abs(p2)", DT_INT64, "9223372036854775807", "N", "0", "7");
    expect("passengers / p2 * 0", DT_FLOAT64, "0", "-0", "N", "-0");
    expect("passengers % p2", DT_INT64, "1", "2", "N", "4");
    expect("p2 % -1", DT_INT64, "0", "0", "0", "0");
    expect("-9223372036854775808 = p2", DT_BOOL, "0", "1", "0", "0");
}

Test(dtable_expr, float_arithmetic) {
    expect("fare + tip", DT_FLOAT64, "15", "N", "24", "-2");
    expect("fare - passengers", DT_FLOAT64, "11.5", "6", "17", "-7");
    expect("fare * 2", DT_FLOAT64, "25", "16", "40", "-6");
    expect("tip / fare * 100", DT_FLOAT64, "20", "N", "20", "-33.3333");
    expect("fare / (tip - tip)", DT_FLOAT64, "inf", "N", "inf", "-inf");
    expect("tip % 1.5", DT_FLOAT64, "1", "N", "1", "1");
    expect("-fare", DT_FLOAT64, "-12.5", "-8", "-20", "3");
    expect("1.5e1 + .5 + 2. + 1E-1", DT_FLOAT64, "17.6", "17.6", "17.6", "17.6");
}

Test(dtable_expr, functions) {
    expect("abs(fare)", DT_FLOAT64, "12.5", "8", "20", "3");
    expect("sqrt(passengers)", DT_FLOAT64, "1", "1.41421", "1.73205", "2");
    expect("sqrt(fare)", DT_FLOAT64, "3.53553", "2.82843", "4.47214", "-nan");
    expect("floor(fare / 4)", DT_FLOAT64, "3", "2", "5", "-1");
    expect("ceil(fare / 4)", DT_FLOAT64, "4", "2", "5", "-0");
    expect("round(fare / 5)", DT_FLOAT64, "3", "2", "4", "-1");
    expect("round(passengers)", DT_INT64, "1", "2", "3", "4");
    expect("floor(passengers) + ceil(passengers)", DT_INT64, "2", "4", "6", "8");
    expect("lower(name)", DT_STRING, "alice", "bob", "N", "h\xc3\xa9llo");
    expect("upper(name)", DT_STRING, "ALICE", "BOB", "N", "H\xc3\xa9LLO");
    expect("length(name)", DT_INT64, "5", "3", "N", "5");
    expect("coalesce(tip, -1)", DT_FLOAT64, "2.5", "-1", "4", "1");
    expect("coalesce(name, 'none')", DT_STRING, "alice", "Bob", "none", "h\xc3\xa9llo");
    expect("coalesce(flag, true)", DT_BOOL, "1", "0", "1", "1");
    expect("coalesce(passengers, 0)", DT_INT64, "1", "2", "3", "4");
    expect("coalesce(null, name)", DT_STRING, "alice", "Bob", "N", "h\xc3\xa9llo");
    expect("ABS(-2) + Length('x')", DT_INT64, "3", "3", "3", "3");
}

Test(dtable_expr, comparisons) {
    expect("fare > 10", DT_BOOL, "1", "0", "1", "0");
    expect("fare >= 8", DT_BOOL, "1", "1", "1", "0");
    expect("fare < passengers", DT_BOOL, "0", "0", "0", "1");
    expect("passengers <= 2", DT_BOOL, "1", "1", "0", "0");
    expect("passengers = 2", DT_BOOL, "0", "1", "0", "0");
    expect("passengers == 2.0", DT_BOOL, "0", "1", "0", "0");
    expect("passengers != 2", DT_BOOL, "1", "0", "1", "1");
    expect("passengers <> 2", DT_BOOL, "1", "0", "1", "1");
    expect("tip > 1", DT_BOOL, "1", "N", "1", "0");
    expect("name < 'b'", DT_BOOL, "1", "1", "N", "0");
    expect("name >= 'alice'", DT_BOOL, "1", "0", "N", "1");
    expect("name = 'alic'", DT_BOOL, "0", "0", "N", "0");
    expect("name > 'hello'", DT_BOOL, "0", "0", "N", "1"); /* UTF-8 bytes order */
    expect("flag = true", DT_BOOL, "1", "0", "1", "N");
    expect("flag < true", DT_BOOL, "0", "1", "0", "N");
    expect("t > ts('1970-01-01T00:00:00Z')", DT_BOOL, "0", "1", "1", "0");
    expect("t = ts('1970-01-02')", DT_BOOL, "0", "0", "1", "0");
    expect("t = ts('1970-01-01 00:00:01.000000')", DT_BOOL, "0", "1", "0", "0");
    expect("t = ts('1970-01-01T02:00:01+02:00')", DT_BOOL, "0", "1", "0", "0");
}

Test(dtable_expr, timestamps) {
    expect("t - ts('1970-01-01T00:00:00Z')", DT_INT64, "0", "1000000", "86400000000", "-1");
    expect("t + 5", DT_TIMESTAMP, "5", "1000005", "86400000005", "4");
    expect("5 + t - 1", DT_TIMESTAMP, "4", "1000004", "86400000004", "3");
    expect("ts('2024-01-02T03:04:05Z') - ts('2024-01-02T03:04:04.5Z')", DT_INT64, "500000",
           "500000", "500000", "500000");
    expect("ts('2000-03-01') - ts('2000-02-28')", DT_INT64, "172800000000", "172800000000",
           "172800000000", "172800000000");
    expect("ts('2024-01-02T03:04:05Z')", DT_TIMESTAMP, "1704164645000000", "1704164645000000",
           "1704164645000000", "1704164645000000");
}

Test(dtable_expr, nulls) {
    expect("tip is null", DT_BOOL, "0", "1", "0", "0");
    expect("tip is not null", DT_BOOL, "1", "0", "1", "1");
    expect("tip + 1 IS NULL", DT_BOOL, "0", "1", "0", "0");
    expect("null", DT_BOOL, "N", "N", "N", "N");
    expect("null + 1", DT_INT64, "N", "N", "N", "N");
    expect("null > fare", DT_BOOL, "N", "N", "N", "N");
    expect("null = null", DT_BOOL, "N", "N", "N", "N");
    expect("-null", DT_INT64, "N", "N", "N", "N");
    expect("lower(null)", DT_STRING, "N", "N", "N", "N");
    expect("t - null", DT_TIMESTAMP, "N", "N", "N", "N");
    expect("null - t", DT_INT64, "N", "N", "N", "N");
    expect("t + null", DT_TIMESTAMP, "N", "N", "N", "N");
    expect("null + t", DT_TIMESTAMP, "N", "N", "N", "N");
    expect("coalesce(null, null)", DT_BOOL, "N", "N", "N", "N");
    expect("null is null", DT_BOOL, "1", "1", "1", "1");
    expect("tip", DT_FLOAT64, "2.5", "N", "4", "1");
    expect("name", DT_STRING, "alice", "Bob", "N", "h\xc3\xa9llo");
}

/* and / or / not over {true, false, null} x {true, false, null} */
Test(dtable_expr, three_valued_logic) {
    const char *v[3] = {"true", "false", "null"};
    const char *and_t[3][3] = {{"1", "0", "N"}, {"0", "0", "0"}, {"N", "0", "N"}};
    const char *or_t[3][3] = {{"1", "1", "1"}, {"1", "0", "N"}, {"1", "N", "N"}};
    const char *not_t[3] = {"0", "1", "N"};
    char buf[128];
    for (int a = 0; a < 3; a++) {
        snprintf(buf, sizeof buf, "not %s", v[a]);
        expect(buf, DT_BOOL, not_t[a], not_t[a], not_t[a], not_t[a]);
        for (int b = 0; b < 3; b++) {
            snprintf(buf, sizeof buf, "%s and %s", v[a], v[b]);
            expect(buf, DT_BOOL, and_t[a][b], and_t[a][b], and_t[a][b], and_t[a][b]);
            snprintf(buf, sizeof buf, "%s OR %s", v[a], v[b]);
            expect(buf, DT_BOOL, or_t[a][b], or_t[a][b], or_t[a][b], or_t[a][b]);
        }
    }
    /* with columns: flag = 1, 0, 1, null; tip > 1 = 1, null, 1, 0 */
    expect("flag and tip > 1", DT_BOOL, "1", "0", "1", "0");
    expect("flag or tip > 1", DT_BOOL, "1", "N", "1", "N");
    expect("not flag", DT_BOOL, "0", "1", "0", "N");
}

Test(dtable_expr, precedence) {
    expect("1 + 2 * 3", DT_INT64, "7", "7", "7", "7");
    expect("(1 + 2) * 3", DT_INT64, "9", "9", "9", "9");
    expect("10 - 4 - 3", DT_INT64, "3", "3", "3", "3");
    expect("-2 * -3", DT_INT64, "6", "6", "6", "6");
    expect("7 % 4 * 2", DT_INT64, "6", "6", "6", "6");
    expect("1 + 1 = 2 and 2 < 1 or true", DT_BOOL, "1", "1", "1", "1");
    expect("true or true and false", DT_BOOL, "1", "1", "1", "1");
    expect("not false and false", DT_BOOL, "0", "0", "0", "0");
    expect("not 1 = 2", DT_BOOL, "1", "1", "1", "1");
    expect("fare > 10 and (passengers >= 2 or tip is null)", DT_BOOL, "0", "0", "1", "0");
    expect("\"odd name\" * 2", DT_INT64, "10", "12", "14", "16");
    expect("'it''s' = 'it''s' and length('it''s') = 4", DT_BOOL, "1", "1", "1", "1");
}

Test(dtable_expr, errors) {
    expect_err("fare > ", "expression 'fare > ' at 7: expected a value");
    expect_err("fair > 1", "expression 'fair > 1' at 0: unknown column 'fair' (columns: fare, "
                           "tip, passengers, name, flag, t, p2, odd name)");
    expect_err("name > 3", "expression 'name > 3' at 5: cannot compare string 'name' with int64");
    expect_err("1 + 'a'", "expression '1 + 'a'' at 2: cannot apply '+' to int64 and string");
    expect_err("flag + 1", "expression 'flag + 1' at 5: cannot apply '+' to bool 'flag' and int64");
    expect_err("fare and flag",
               "expression 'fare and flag' at 5: 'and' needs bool operands, got float64 'fare'");
    expect_err("not fare", "expression 'not fare' at 0: 'not' needs a bool operand, got float64 "
                           "'fare'");
    expect_err("-name", "expression '-name' at 0: cannot negate string 'name'");
    expect_err("(fare", "expression '(fare' at 5: expected ')'");
    expect_err("fare)", "expression 'fare)' at 4: unexpected ')'");
    expect_err("fare fare", "expression 'fare fare' at 5: unexpected 'fare'");
    expect_err("'abc", "expression ''abc' at 0: unterminated string");
    expect_err("\"abc", "expression '\"abc' at 0: unterminated quoted name");
    expect_err("1e+", "expression '1e+' at 0: invalid number '1e+'");
    expect_err("12ab", "expression '12ab' at 0: invalid number '12ab'");
    expect_err("9223372036854775808",
               "expression '9223372036854775808' at 0: integer 9223372036854775808 out of range");
    expect_err("foo(1)", "expression 'foo(1)' at 0: unknown function 'foo'");
    expect_err("abs(1, 2)", "expression 'abs(1, 2)' at 0: abs() takes 1 argument, got 2");
    expect_err("coalesce(1)", "expression 'coalesce(1)' at 0: coalesce() takes 2 arguments, got 1");
    expect_err("coalesce(1, 'a')",
               "expression 'coalesce(1, 'a')' at 0: coalesce() of int64 and string");
    expect_err("lower(fare)",
               "expression 'lower(fare)' at 0: lower() takes a string, got float64 'fare'");
    expect_err("sqrt(name)",
               "expression 'sqrt(name)' at 0: sqrt() takes a number, got string 'name'");
    expect_err("abs(1 2)", "expression 'abs(1 2)' at 6: expected ',' or ')'");
    expect_err("ts(fare)", "expression 'ts(fare)' at 3: ts() takes a string literal");
    expect_err("ts('2024-02-30')", "expression 'ts('2024-02-30')' at 3: invalid timestamp "
                                   "'2024-02-30'");
    expect_err("t is nul", "expression 't is nul' at 5: expected 'null'");
    expect_err("fare > and", "expression 'fare > and' at 7: expected a value");
    expect_err("fare # 1", "expression 'fare # 1' at 5: unexpected '#'");
    expect_err("", "expression '' at 0: expected a value");
    expect_err("t + t", "expression 't + t' at 2: cannot apply '+' to timestamp 't' and "
                        "timestamp 't'");
    expect_err("t = 1", "expression 't = 1' at 2: cannot compare timestamp 't' with int64");
    char small[16];
    cr_assert_null(dt_expr_parse("fare >", NC, names, types, small, sizeof small));
    cr_assert_eq(strlen(small), 15);
    cr_assert_null(dt_expr_parse("fare >", NC, names, types, NULL, 0));
}

/* Text of k copies of pre, then mid, then k copies of post (malloc'ed). */
static char *repeat(const char *pre, const char *mid, const char *post, int k) {
    size_t lp = strlen(pre), lm = strlen(mid), lq = strlen(post);
    char *s = malloc((size_t)k * (lp + lq) + lm + 1), *w = s;
    for (int i = 0; i < k; i++, w += lp)
        memcpy(w, pre, lp);
    memcpy(w, mid, lm), w += lm;
    for (int i = 0; i < k; i++, w += lq)
        memcpy(w, post, lq);
    *w = 0;
    return s;
}

/* Found with fuzz/fuzz_expr.c's harness on long inputs: 20000 nested parentheses, or a sum of
 * 20000 terms (a left-deep tree that eval walks recursively), overflowed the stack. Nesting
 * and tree depth are now bounded (1000 levels): deeper is a parse error. */
Test(dtable_expr, nesting_limit) {
    static const struct {
        const char *pre, *mid, *post;
    } deep[] = {{"(", "p2", ")"},   {"not ", "flag", ""},       {"-", "passengers", ""},
                {"abs(", "1", ")"}, {"", "1", " + passengers"}, {"", "flag", " is null"}};
    size_t errlen = 1 << 20;
    char *err = malloc(errlen);
    for (size_t d = 0; d < sizeof deep / sizeof deep[0]; d++) {
        char *ok = repeat(deep[d].pre, deep[d].mid, deep[d].post, 900);
        dt_expr_t *e = dt_expr_parse(ok, NC, names, types, err, errlen);
        cr_assert(e, "900 levels of '%s': %s", deep[d].pre[0] ? deep[d].pre : deep[d].post, err);
        dt_column_t out;
        cr_assert_eq(dt_expr_eval(e, cols, NR, &out, err, errlen), 0);
        dt_column_free(&out);
        dt_expr_free(e);
        free(ok);
        char *bad = repeat(deep[d].pre, deep[d].mid, deep[d].post, 50000);
        cr_assert_null(dt_expr_parse(bad, NC, names, types, err, errlen));
        cr_assert(strstr(err, "nested too deeply (more than 1000 levels)"), "%.200s", err);
        free(bad);
    }
    char *sum = repeat("", "passengers", " + passengers", 998);
    expect(sum, DT_INT64, "999", "1998", "2997", "3996");
    free(sum);
    free(err);
}

Test(dtable_expr, columns_read) {
    dt_expr_t *e = parse_ok("tip / fare + fare * \"odd name\" - length(name)");
    int n;
    const int *c = dt_expr_columns(e, &n);
    cr_assert_eq(n, 4);
    cr_assert_eq(c[0], 0);
    cr_assert_eq(c[1], 1);
    cr_assert_eq(c[2], 3);
    cr_assert_eq(c[3], 7);
    /* only those columns are read: the others may be zeroed */
    dt_column_t part[NC];
    memset(part, 0, sizeof part);
    for (int k = 0; k < n; k++)
        part[c[k]] = cols[c[k]];
    dt_column_t out;
    char err[256];
    cr_assert_eq(dt_expr_eval(e, part, NR, &out, err, sizeof err), 0, "%s", err);
    dt_column_free(&out);
    /* wrong length or type */
    cr_assert_eq(dt_expr_eval(e, part, NR - 1, &out, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "column 'fare' is float64 with 4 rows, the expression expects float64 "
                          "with 3");
    part[3].type = DT_INT64;
    cr_assert_eq(dt_expr_eval(e, part, NR, &out, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "column 'name' is int64 with 4 rows, the expression expects string "
                          "with 4");
    dt_expr_free(e);
    e = parse_ok("1 + 2");
    c = dt_expr_columns(e, &n);
    cr_assert_eq(n, 0);
    cr_assert_eq(dt_expr_eval(e, NULL, 0, &out, err, sizeof err), 0);
    cr_assert_eq(out.n, 0);
    dt_column_free(&out);
    dt_expr_free(e);
    dt_expr_free(NULL);
}

Test(dtable_expr, filter_and_take) {
    dt_column_t pred = eval_ok("tip > 1 or flag", DT_BOOL); /* 1, N, 1, N */
    int64_t rows[NR];
    int64_t k = dt_filter_select(&pred, rows);
    cr_assert_eq(k, 2);
    cr_assert_eq(rows[0], 0);
    cr_assert_eq(rows[1], 2);
    cr_assert_eq(dt_filter_select(&cols[0], rows), -EINVAL);
    dt_column_free(&pred);

    int64_t pick[5] = {3, 2, 2, 0, 1};
    dt_column_t out;
    cr_assert_eq(dt_column_take(&cols[3], pick, 5, &out), 0);
    cr_assert_eq(out.type, DT_STRING);
    cr_assert_eq(out.n, 5);
    cr_assert_eq(out.nbytes, 6 + 5 + 3);
    cr_assert(dt_valid(&out, 0) && !dt_valid(&out, 1) && !dt_valid(&out, 2));
    cr_assert(dt_valid(&out, 3) && dt_valid(&out, 4));
    cr_assert_eq(memcmp((char *)out.values + out.offsets[3], "alice", 5), 0);
    cr_assert_eq(memcmp((char *)out.values + out.offsets[4], "Bob", 3), 0);
    dt_column_free(&out);
    int64_t pick2[2] = {0, 2}; /* tip's rows without its null: no bitmap */
    cr_assert_eq(dt_column_take(&cols[1], pick2, 2, &out), 0);
    cr_assert_null(out.valid);
    cr_assert_eq(((double *)out.values)[1], 4.0);
    dt_column_free(&out);
    cr_assert_eq(dt_column_take(&cols[4], pick, 5, &out), 0);
    cr_assert(!dt_valid(&out, 0));
    cr_assert_eq(((uint8_t *)out.values)[3], 1);
    dt_column_free(&out);
    cr_assert_eq(dt_column_take(&cols[2], pick, 0, &out), 0);
    cr_assert_eq(out.n, 0);
    dt_column_free(&out);
    int64_t bad[1] = {NR};
    cr_assert_eq(dt_column_take(&cols[2], bad, 1, &out), -EINVAL);
}

/* Many rows, to cross bitmap words: validity combined word-wise must match row by row. */
Test(dtable_expr, long_columns) {
    enum { N = 1000 };
    int64_t a[N], b[N];
    char na[N + 1], nb[N + 1];
    for (int i = 0; i < N; i++) {
        a[i] = i;
        b[i] = i % 7 - 3;
        na[i] = i % 3 == 0 ? 'N' : '.';
        nb[i] = i % 5 == 0 ? 'N' : '.';
    }
    na[N] = nb[N] = 0;
    dt_column_t c[2] = {col_i(DT_INT64, N, a, na), col_i(DT_INT64, N, b, nb)};
    const char *nm[2] = {"a", "b"};
    dt_type_t ty[2] = {DT_INT64, DT_INT64};
    char err[256];
    dt_expr_t *e = dt_expr_parse("a % b + 1", 2, nm, ty, err, sizeof err);
    cr_assert(e, "%s", err);
    dt_column_t out;
    cr_assert_eq(dt_expr_eval(e, c, N, &out, err, sizeof err), 0);
    for (int i = 0; i < N; i++) {
        bool valid = i % 3 && i % 5 && b[i] != 0;
        cr_assert_eq(dt_valid(&out, i), valid, "row %d", i);
        int64_t want = valid ? a[i] % b[i] + 1 : 0;
        cr_assert_eq(((int64_t *)out.values)[i], want, "row %d", i);
    }
    dt_column_free(&out);
    dt_expr_free(e);
    dt_column_free(&c[0]);
    dt_column_free(&c[1]);
}

/* ---- randomized: random typed expression trees over random columns with nulls, evaluated
 * here column-at-a-time and by SQLite (the sqlite3 CLI) on the same table. The generator
 * stays away from the documented differences: integer overflow (values are bounded), float
 * division by zero (float divisors are nonzero columns or literals), % on floats, and int64 /
 * int64, which SQLite truncates (its SQL casts the dividend to REAL). Our text uses the
 * fewest parentheses our precedence allows; SQLite's is fully parenthesized, so precedence is
 * checked too. ---- */

enum { RN = 40, RNEXPR = 1000 };
enum { P_OR = 1, P_AND, P_NOT, P_CMP, P_ADD, P_MUL, P_UNARY, P_PRIM };

typedef struct gexpr {
    char *mine, *sql;
    int prec;
    double bound; /* |value| bound of numeric expressions */
} gexpr_t;

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static int rint_(int n) {
    return (int)(rnd() % (uint64_t)n);
}

static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    cr_assert(vasprintf(&s, f, ap) >= 0);
    va_end(ap);
    return s;
}

static gexpr_t leaf(char *mine, char *sql, double bound) {
    return (gexpr_t){mine, sql, P_PRIM, bound};
}

/* Our text of g as an operand needing precedence >= prec. */
static char *wrap(gexpr_t g, int prec) {
    char *s = g.prec >= prec ? fmt("%s", g.mine) : fmt("(%s)", g.mine);
    return s;
}

static void gfree(gexpr_t g) {
    free(g.mine);
    free(g.sql);
}

static gexpr_t binop(gexpr_t a, const char *op, const char *sqlop, gexpr_t b, int prec,
                     double bound) {
    char *wa = wrap(a, prec), *wb = wrap(b, prec + 1);
    gexpr_t r = {fmt("%s %s %s", wa, op, wb), fmt("(%s %s %s)", a.sql, sqlop, b.sql), prec, bound};
    free(wa);
    free(wb);
    gfree(a);
    gfree(b);
    return r;
}

static gexpr_t func1(const char *f, gexpr_t a, double bound) {
    gexpr_t r = {fmt("%s(%s)", f, a.mine), fmt("%s(%s)", f, a.sql), P_PRIM, bound};
    gfree(a);
    return r;
}

static gexpr_t func2(const char *f, gexpr_t a, gexpr_t b, double bound) {
    gexpr_t r = {fmt("%s(%s, %s)", f, a.mine, b.mine), fmt("%s(%s, %s)", f, a.sql, b.sql), P_PRIM,
                 bound};
    gfree(a);
    gfree(b);
    return r;
}

static gexpr_t unop(const char *op, const char *sqlop, gexpr_t a, int prec, double bound) {
    char *wa = wrap(a, prec);
    gexpr_t r = {fmt("%s %s", op, wa), fmt("(%s (%s))", sqlop, a.sql), prec, bound};
    free(wa);
    gfree(a);
    return r;
}

static const char *const rstrs[] = {"", "a", "B", "ab", "Abc", "it's", "zz", "b"};
enum { NRSTRS = 8 };

static gexpr_t g_int(int d);
static gexpr_t g_float(int d);
static gexpr_t g_bool(int d);
static gexpr_t g_str(int d);
static gexpr_t g_ts(int d);

static char *sq(const char *s) { /* 'quoted' with '' escapes */
    char *r = malloc(2 * strlen(s) + 3);
    char *w = r;
    *w++ = '\'';
    for (; *s; s++) {
        if (*s == '\'') *w++ = '\'';
        *w++ = *s;
    }
    *w++ = '\'';
    *w = 0;
    return r;
}

static gexpr_t g_int(int d) {
    int c = d <= 0 ? rint_(3) : rint_(14);
    switch (c) {
    case 0: {
        int k = rint_(3);
        return leaf(fmt("i%d", k), fmt("i%d", k), 20);
    }
    case 1: {
        int v = rint_(21);
        return leaf(fmt("%d", v), fmt("%d", v), v);
    }
    case 2:
        if (rint_(3) == 0) return leaf(fmt("null"), fmt("NULL"), 0);
        return leaf(fmt("I%d", 0), fmt("i0"), 20); /* wrong case: not a column */
    case 3: {
        gexpr_t a = g_int(d - 1);
        return unop("-", "-", a, P_UNARY, a.bound);
    }
    case 4:
    case 5: {
        gexpr_t a = g_int(d - 1), b = g_int(d - 1);
        bool add = c == 4;
        return binop(a, add ? "+" : "-", add ? "+" : "-", b, P_ADD, a.bound + b.bound);
    }
    case 6: {
        gexpr_t a = g_int(d - 1), b = g_int(d - 1);
        if (a.bound * b.bound > 1e15) return binop(a, "+", "+", b, P_ADD, a.bound + b.bound);
        return binop(a, "*", "*", b, P_MUL, a.bound * b.bound);
    }
    case 7: {
        gexpr_t a = g_int(d - 1), b = g_int(d - 1);
        return binop(a, "%", "%", b, P_MUL, a.bound);
    }
    case 8: {
        gexpr_t a = g_int(d - 1);
        return func1("abs", a, a.bound);
    }
    case 9: {
        /* not round: SQLite's round() of an integer is REAL, which loses digits of a
         * timestamp difference; ours stays int64 (unit-tested above) */
        gexpr_t a = g_int(d - 1);
        return func1(rint_(2) ? "floor" : "ceil", a, a.bound);
    }
    case 10:
        return func1("length", g_str(d - 1), 5);
    case 11: {
        /* one side a column: coalesce(null, null) alone would be a bool */
        gexpr_t a = g_int(d - 1), b = g_int(0);
        if (b.mine[0] != 'i') {
            gfree(b);
            b = leaf(fmt("i1"), fmt("i1"), 20);
        }
        double bd = a.bound > b.bound ? a.bound : b.bound;
        return rint_(2) ? func2("coalesce", a, b, bd) : func2("coalesce", b, a, bd);
    }
    case 12: {
        gexpr_t a = g_ts(d - 1), b = g_ts(d - 1);
        return binop(a, "-", "-", b, P_ADD, 2e8);
    }
    default: {
        gexpr_t a = g_int(d - 1);
        gexpr_t r = leaf(fmt("(%s)", a.mine), fmt("(%s)", a.sql), a.bound);
        gfree(a);
        return r;
    }
    }
}

static gexpr_t g_float(int d) {
    int c = d <= 0 ? rint_(2) : rint_(12);
    switch (c) {
    case 0: {
        int k = rint_(2);
        return leaf(fmt("f%d", k), fmt("f%d", k), 10);
    }
    case 1: {
        int v = rint_(40) + 1;
        const char *forms[] = {"%g", "%.2f", "%ge0", "%.2fE+0"};
        char *m = fmt(forms[rint_(4)], v / 4.0);
        return leaf(m, fmt("%.2f", v / 4.0), v / 4.0);
    }
    case 2: {
        gexpr_t a = g_float(d - 1);
        return unop("-", "-", a, P_UNARY, a.bound);
    }
    case 3:
    case 4:
    case 5: { /* + - * with one side possibly int */
        gexpr_t a = rint_(3) ? g_float(d - 1) : g_int(d - 1);
        gexpr_t b = g_float(d - 1);
        if (rint_(2)) { /* int or float on either side */
            gexpr_t t = a;
            a = b;
            b = t;
        }
        if (c == 5 && a.bound * b.bound < 1e12)
            return binop(a, "*", "*", b, P_MUL, a.bound * b.bound);
        const char *op = c == 4 ? "-" : "+";
        return binop(a, op, op, b, P_ADD, a.bound + b.bound);
    }
    case 6: { /* float / nonzero float */
        gexpr_t a = rint_(2) ? g_float(d - 1) : g_int(d - 1);
        gexpr_t b = g_float(0); /* a column or a literal, never 0 */
        return binop(a, "/", "/", b, P_MUL, a.bound * 4);
    }
    case 7: { /* int / int: ours float64, SQLite's with the dividend made REAL */
        gexpr_t a = g_int(d - 1), b = g_int(d - 1);
        char *wa = wrap(a, P_MUL), *wb = wrap(b, P_MUL + 1);
        gexpr_t r = {fmt("%s / %s", wa, wb), fmt("(CAST(%s AS REAL) / %s)", a.sql, b.sql), P_MUL,
                     a.bound};
        free(wa);
        free(wb);
        gfree(a);
        gfree(b);
        return r;
    }
    case 8: {
        gexpr_t a = rint_(2) ? g_float(d - 1) : g_int(d - 1);
        gexpr_t r = func1("abs", a, a.bound);
        return func1("sqrt", r, r.bound);
    }
    case 9: {
        static const char *const f[] = {"floor", "ceil", "round", "abs"};
        gexpr_t a = g_float(d - 1);
        return func1(f[rint_(4)], a, a.bound + 1);
    }
    case 10: {
        gexpr_t a = g_float(d - 1), b = rint_(2) ? g_float(d - 1) : g_int(d - 1);
        double bd = a.bound > b.bound ? a.bound : b.bound;
        if (rint_(2)) return func2("coalesce", a, b, bd);
        return func2("coalesce", b, a, bd);
    }
    default: {
        gexpr_t a = g_float(d - 1);
        gexpr_t r = leaf(fmt("(%s)", a.mine), fmt("(%s)", a.sql), a.bound);
        gfree(a);
        return r;
    }
    }
}

static gexpr_t g_str(int d) {
    int c = d <= 0 ? rint_(3) : rint_(6);
    switch (c) {
    case 0: {
        int k = rint_(2);
        return leaf(fmt("s%d", k), fmt("s%d", k), 0);
    }
    case 1: {
        char *q = sq(rstrs[rint_(NRSTRS)]);
        return leaf(q, fmt("%s", q), 0);
    }
    case 2:
        if (rint_(2)) return leaf(fmt("NULL"), fmt("NULL"), 0);
        return leaf(fmt("\"s0\""), fmt("s0"), 0);
    case 3:
        return func1("lower", g_str(d - 1), 0);
    case 4:
        return func1("UPPER", g_str(d - 1), 0);
    default:
        if (rint_(2)) return func2("coalesce", g_str(d - 1), leaf(fmt("s1"), fmt("s1"), 0), 0);
        return func2("coalesce", leaf(fmt("s0"), fmt("s0"), 0), g_str(d - 1), 0);
    }
}

static const int64_t ts_base = 1704164645000000LL; /* 2024-01-02T03:04:05Z */

static gexpr_t g_ts(int d) {
    int c = d <= 0 ? rint_(2) : rint_(5);
    switch (c) {
    case 0: {
        int k = rint_(2);
        return leaf(fmt("t%d", k), fmt("t%d", k), 0);
    }
    case 1: {
        int s = rint_(50);
        return leaf(fmt("ts('2024-01-02T03:04:%02d.5Z')", 5 + s),
                    fmt("%lld", (long long)(ts_base + s * 1000000LL + 500000)), 0);
    }
    case 2: {
        gexpr_t a = g_ts(d - 1), b = g_int(d - 1);
        const char *op = rint_(2) ? "+" : "-";
        return binop(a, op, op, b, P_ADD, 0);
    }
    case 3: {
        gexpr_t a = g_int(d - 1), b = g_ts(d - 1);
        return binop(a, "+", "+", b, P_ADD, 0);
    }
    default:
        return func2("coalesce", g_ts(d - 1), g_ts(d - 1), 0);
    }
}

static gexpr_t g_bool(int d) {
    int c = d <= 0 ? rint_(3) : rint_(14);
    static const char *const cmps[] = {"=", "==", "!=", "<>", "<", "<=", ">", ">="};
    static const char *const sqlcmps[] = {"=", "=", "!=", "<>", "<", "<=", ">", ">="};
    switch (c) {
    case 0: {
        int k = rint_(2);
        return leaf(fmt("b%d", k), fmt("b%d", k), 0);
    }
    case 1: {
        static const char *const l[] = {"true", "false", "null", "TRUE", "False", "NULL"};
        static const char *const s[] = {"TRUE", "FALSE", "NULL", "TRUE", "FALSE", "NULL"};
        int k = rint_(6);
        return leaf(fmt("%s", l[k]), fmt("%s", s[k]), 0);
    }
    case 2: {
        int k = rint_(3);
        return (gexpr_t){fmt("i%d > 0", k), fmt("(i%d > 0)", k), P_CMP, 0};
    }
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
    case 8: {
        gexpr_t a, b;
        switch (c) {
        case 3:
            a = g_int(d - 1);
            b = g_int(d - 1);
            break;
        case 4:
            a = g_float(d - 1);
            b = rint_(2) ? g_float(d - 1) : g_int(d - 1);
            break;
        case 5:
            a = g_str(d - 1);
            b = g_str(d - 1);
            break;
        case 6:
            a = g_bool(d - 1);
            b = g_bool(d - 1);
            break;
        case 7:
            a = g_ts(d - 1);
            b = g_ts(d - 1);
            break;
        default:
            a = g_int(d - 1);
            b = g_float(d - 1);
            break;
        }
        int k = rint_(8);
        if (c == 6 && a.prec == P_CMP) { /* keep bool = bool unambiguous in both */
            char *m = fmt("(%s)", a.mine);
            free(a.mine);
            a.mine = m;
            a.prec = P_PRIM;
        }
        return binop(a, cmps[k], sqlcmps[k], b, P_CMP, 0);
    }
    case 9: {
        gexpr_t a;
        switch (rint_(5)) {
        case 0:
            a = g_int(d - 1);
            break;
        case 1:
            a = g_float(d - 1);
            break;
        case 2:
            a = g_str(d - 1);
            break;
        case 3:
            a = g_ts(d - 1);
            break;
        default:
            a = g_bool(d - 1);
            break;
        }
        bool neg = rint_(2);
        char *wa = wrap(a, P_CMP);
        gexpr_t r = {fmt("%s %s", wa, neg ? "is not null" : "IS NULL"),
                     fmt("(%s %s)", a.sql, neg ? "IS NOT NULL" : "IS NULL"), P_CMP, 0};
        free(wa);
        gfree(a);
        return r;
    }
    case 10:
        return binop(g_bool(d - 1), "and", "AND", g_bool(d - 1), P_AND, 0);
    case 11:
        return binop(g_bool(d - 1), "OR", "OR", g_bool(d - 1), P_OR, 0);
    case 12:
        return unop("not", "NOT", g_bool(d - 1), P_NOT, 0);
    default:
        return func2("coalesce", g_bool(d - 1), g_bool(d - 1), 0);
    }
}

Test(dtable_expr, random_vs_sqlite, .timeout = 60) {
    const char *nm[] = {"i0", "i1", "i2", "f0", "f1", "b0", "b1", "s0", "s1", "t0", "t1"};
    dt_type_t ty[] = {DT_INT64, DT_INT64,  DT_INT64,  DT_FLOAT64,   DT_FLOAT64,  DT_BOOL,
                      DT_BOOL,  DT_STRING, DT_STRING, DT_TIMESTAMP, DT_TIMESTAMP};
    enum { NCR = 11 };
    const char *seed = getenv("TEST_EXPR_SEED"); /* to try other draws */
    if (seed) rng_state = strtoull(seed, NULL, 10) | 1;
    dt_column_t rc[NCR];
    char nulls[NCR][RN + 1];
    int64_t iv[3][RN], tv[2][RN];
    double fv[2][RN];
    uint8_t bv[2][RN];
    const char *sv[2][RN];
    for (int k = 0; k < NCR; k++) {
        for (int i = 0; i < RN; i++)
            nulls[k][i] = rint_(5) == 0 ? 'N' : '.';
        nulls[k][RN] = 0;
    }
    for (int i = 0; i < RN; i++) {
        for (int k = 0; k < 3; k++)
            iv[k][i] = rint_(41) - 20;
        for (int k = 0; k < 2; k++) {
            int v = rint_(80) - 40;
            fv[k][i] = (v >= 0 ? v + 1 : v) / 4.0; /* never 0 */
            bv[k][i] = (uint8_t)rint_(2);
            sv[k][i] = rstrs[rint_(NRSTRS)];
            tv[k][i] = ts_base + rint_(60) * 1000000LL;
        }
    }
    for (int k = 0; k < 3; k++)
        rc[k] = col_i(DT_INT64, RN, iv[k], nulls[k]);
    for (int k = 0; k < 2; k++) {
        rc[3 + k] = col_f(RN, fv[k], nulls[3 + k]);
        rc[5 + k] = col_b(RN, bv[k], nulls[5 + k]);
        rc[7 + k] = col_s(RN, sv[k], nulls[7 + k]);
        rc[9 + k] = col_i(DT_TIMESTAMP, RN, tv[k], nulls[9 + k]);
    }

    char sqlpath[] = "/tmp/test_expr_XXXXXX";
    int fd = mkstemp(sqlpath);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, ".nullvalue <NULL>\nCREATE TABLE t(id INTEGER PRIMARY KEY");
    for (int k = 0; k < NCR; k++) /* REAL affinity keeps 2.0 a float in SQLite */
        fprintf(f, ", %s %s", nm[k],
                ty[k] == DT_FLOAT64  ? "REAL"
                : ty[k] == DT_STRING ? "TEXT"
                                     : "INTEGER");
    fprintf(f, ");\nBEGIN;\n");
    for (int i = 0; i < RN; i++) {
        fprintf(f, "INSERT INTO t VALUES(%d", i);
        for (int k = 0; k < NCR; k++) {
            if (nulls[k][i] == 'N') {
                fprintf(f, ", NULL");
            } else if (k < 3) {
                fprintf(f, ", %lld", (long long)iv[k][i]);
            } else if (k < 5) {
                fprintf(f, ", %.17g", fv[k - 3][i]);
            } else if (k < 7) {
                fprintf(f, ", %d", bv[k - 5][i]);
            } else if (k < 9) {
                char *q = sq(sv[k - 7][i]);
                fprintf(f, ", %s", q);
                free(q);
            } else {
                fprintf(f, ", %lld", (long long)tv[k - 9][i]);
            }
        }
        fprintf(f, ");\n");
    }
    fprintf(f, "COMMIT;\n");

    dt_column_t outs[RNEXPR];
    char *texts[RNEXPR];
    int nexpr = 0, attempts = 0;
    while (nexpr < RNEXPR) {
        cr_assert(attempts++ < 100 * RNEXPR);
        int which = rint_(5);
        int depth = 1 + rint_(4);
        gexpr_t g = which == 0   ? g_int(depth)
                    : which == 1 ? g_float(depth)
                    : which == 2 ? g_str(depth)
                    : which == 3 ? g_ts(depth)
                                 : g_bool(depth);
        char err[512];
        dt_expr_t *e = dt_expr_parse(g.mine, NCR, nm, ty, err, sizeof err);
        if (strstr(g.mine, "I0")) { /* names are case-sensitive: I0 is not a column */
            cr_assert_null(e, "'%s' parsed", g.mine);
            cr_assert(strstr(err, "unknown column 'I0'"), "%s", err);
            gfree(g);
            continue;
        }
        cr_assert(e, "%s", err);
        int rcode = dt_expr_eval(e, rc, RN, &outs[nexpr], err, sizeof err);
        cr_assert_eq(rcode, 0, "%s", err);
        dt_expr_free(e);
        texts[nexpr] = g.mine;
        fprintf(f, "SELECT '#####';\nSELECT %s FROM t ORDER BY id;\n", g.sql);
        free(g.sql);
        nexpr++;
    }
    fclose(f);

    char cmd[256];
    snprintf(cmd, sizeof cmd, "sqlite3 -batch :memory: < %s", sqlpath);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "cannot run sqlite3");
    char line[4096];
    int ex = -1, row = 0, compared = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "#####") == 0) {
            if (ex >= 0) cr_assert_eq(row, RN, "'%s': %d rows from SQLite", texts[ex], row);
            ex++;
            row = 0;
            continue;
        }
        cr_assert(ex >= 0 && ex < nexpr && row < RN, "unexpected SQLite output: %s", line);
        const dt_column_t *o = &outs[ex];
        bool snull = strcmp(line, "<NULL>") == 0;
        cr_assert_eq(!dt_valid(o, row), snull, "'%s' row %d: ours %s, SQLite %s", texts[ex], row,
                     dt_valid(o, row) ? "a value" : "null", line);
        if (!snull) {
            switch (o->type) {
            case DT_STRING: {
                int64_t len = o->offsets[row + 1] - o->offsets[row];
                cr_assert((int64_t)strlen(line) == len &&
                              memcmp(line, (char *)o->values + o->offsets[row], (size_t)len) == 0,
                          "'%s' row %d: ours '%.*s', SQLite '%s'", texts[ex], row, (int)len,
                          (char *)o->values + o->offsets[row], line);
                break;
            }
            case DT_FLOAT64: {
                double mine = ((double *)o->values)[row], s = strtod(line, NULL);
                cr_assert(fabs(mine - s) <= 1e-9 * (1 + fabs(s)),
                          "'%s' row %d: ours %.17g, SQLite %s", texts[ex], row, mine, line);
                break;
            }
            case DT_BOOL:
                cr_assert_eq(((uint8_t *)o->values)[row], atoi(line), "'%s' row %d: SQLite %s",
                             texts[ex], row, line);
                break;
            default: {
                long long mine = (long long)((int64_t *)o->values)[row];
                cr_assert_eq(mine, strtoll(line, NULL, 10), "'%s' row %d: ours %lld, SQLite %s",
                             texts[ex], row, mine, line);
            }
            }
        }
        row++;
        compared++;
    }
    cr_assert_eq(pclose(p), 0);
    cr_assert_eq(ex, nexpr - 1, "SQLite answered %d of %d expressions", ex + 1, nexpr);
    cr_assert_eq(row, RN);
    cr_assert_eq(compared, nexpr * RN);
    unlink(sqlpath);
    for (int k = 0; k < nexpr; k++) {
        dt_column_free(&outs[k]);
        free(texts[k]);
    }
    for (int k = 0; k < NCR; k++)
        dt_column_free(&rc[k]);
}
