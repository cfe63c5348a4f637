/* dtable/csv.c, the CSV reader's core, in one process: quoting (delimiters, LF, CRLF and
 * doubled quotes inside quoted fields), line ends, headers, delimiters, null markers, each
 * type's conversions and errors with their messages, timestamps against known epoch values,
 * type inference; and the parallel split: generated files cut at every byte offset into two
 * ranges and at random offsets into 3-7, scanned, resolved, parsed range by range (reading on
 * with dt_csv_record_end) and compared with Python's csv module reading the same file. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csv.h"

TestSuite(dtable_csv, .timeout = 60);

#define ERRLEN 256

/* Parses the whole of text (header as opts say) into ncols columns of the given types. */
static int parse_text(const char *text, const dt_csv_opts_t *o, int ncols, const dt_type_t *ty,
                      dt_column_t *cols, int64_t *n, char *err) {
    size_t len = strlen(text), hend = 0;
    if (o->header) {
        int nc;
        char **names;
        int rc = dt_csv_header(text, len, true, o, &nc, &names, &hend, err, ERRLEN);
        if (rc) return rc;
        dt_csv_names_free(names, nc);
    }
    return dt_csv_parse(text, len, hend, len, 0, o, ncols, ty, NULL, cols, n, err, ERRLEN);
}

static void free_cols(dt_column_t *c, int n) {
    for (int j = 0; j < n; j++)
        dt_column_free(&c[j]);
}

/* Row i of string column c, NUL-terminated in a static buffer ("<null>" for null). */
static const char *sat(const dt_column_t *c, int64_t i) {
    static char s[256];
    if (!dt_valid(c, i)) return "<null>";
    size_t n = (size_t)(c->offsets[i + 1] - c->offsets[i]);
    memcpy(s, (const char *)c->values + c->offsets[i], n);
    s[n] = '\0';
    return s;
}

static const dt_type_t S3[] = {DT_STRING, DT_STRING, DT_STRING};

Test(dtable_csv, quoted_fields) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    dt_column_t c[3];
    int64_t n;
    char err[ERRLEN];
    const char *text = "a,\"b,c\",\"d\"\"e\"\n\"x\ny\",\"p\r\nq\",\"\"\"\"\r\n\"\",z,\"r\rs\"";
    cr_assert_eq(parse_text(text, &o, 3, S3, c, &n, err), DT_CSV_OK, "%s", err);
    cr_assert_eq(n, 3);
    const char *want[3][3] = {{"a", "b,c", "d\"e"}, {"x\ny", "p\r\nq", "\""}, {"", "z", "r\rs"}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            cr_assert_str_eq(sat(&c[j], i), want[i][j], "row %d col %d", i, j);
    cr_assert_null(c[0].valid, "a quoted empty string is not null");
    cr_assert_eq(c[0].n, 3);
    cr_assert_eq(c[1].nbytes, (size_t)c[1].offsets[3]);
    free_cols(c, 3);
}

Test(dtable_csv, crlf_header_no_trailing_newline) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    o.header = true;
    const char *text = "id,\"na\"\"me\"\r\n1,x\r\n\r\n2,y";
    int nc;
    char **names;
    size_t hend;
    char err[ERRLEN];
    cr_assert_eq(dt_csv_header(text, strlen(text), true, &o, &nc, &names, &hend, err, ERRLEN), 0);
    cr_assert_eq(nc, 2);
    cr_assert_str_eq(names[0], "id");
    cr_assert_str_eq(names[1], "na\"me");
    cr_assert_eq(hend, 13);
    dt_csv_names_free(names, nc);
    dt_type_t ty[2] = {DT_INT64, DT_STRING};
    dt_column_t c[2];
    int64_t n;
    cr_assert_eq(parse_text(text, &o, 2, ty, c, &n, err), 0, "%s", err);
    cr_assert_eq(n, 2, "the blank line is skipped, the last record counts");
    cr_assert_eq(((int64_t *)c[0].values)[1], 2);
    cr_assert_str_eq(sat(&c[1], 0), "x", "the CR of CRLF is no data");
    cr_assert_str_eq(sat(&c[1], 1), "y");
    free_cols(c, 2);

    /* Without header: c0, c1, ...; leading blank lines skipped. */
    o.header = false;
    cr_assert_eq(dt_csv_header("\n\r\na;b;c\n", 9, true, &o, &nc, &names, &hend, err, ERRLEN), 0);
    cr_assert_eq(nc, 1, "',' is the delimiter: one field");
    dt_csv_names_free(names, nc);
    o.delim = ';';
    cr_assert_eq(dt_csv_header("\n\r\na;b;c", 8, true, &o, &nc, &names, &hend, err, ERRLEN), 0);
    cr_assert_eq(nc, 3);
    cr_assert_str_eq(names[2], "c2");
    cr_assert_eq(hend, 0);
    dt_csv_names_free(names, nc);
    /* The first record not complete in the bytes read: read more. */
    cr_assert_eq(dt_csv_header("a;\"b\n", 5, false, &o, &nc, &names, &hend, err, ERRLEN),
                 DT_CSV_EMORE);
    o.header = true;
    cr_assert_eq(dt_csv_header("\na,b\n", 5, true, &o, &nc, &names, &hend, err, ERRLEN),
                 DT_CSV_EFORMAT);
    cr_assert_eq(dt_csv_header("", 0, true, &o, &nc, &names, &hend, err, ERRLEN), DT_CSV_EFORMAT);
    cr_assert_eq(dt_csv_header("", 0, false, &o, &nc, &names, &hend, err, ERRLEN), DT_CSV_EMORE);
    cr_assert_eq(dt_csv_header("\r", 1, false, &o, &nc, &names, &hend, err, ERRLEN), DT_CSV_EMORE);
    cr_assert_eq(dt_csv_header("\rx\n", 3, true, &o, &nc, &names, &hend, err, ERRLEN), 0);
    cr_assert_str_eq(names[0], "\rx", "a lone CR is data");
    dt_csv_names_free(names, nc);
}

Test(dtable_csv, one_column_blank_lines) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    dt_column_t c;
    int64_t n;
    char err[ERRLEN];
    dt_type_t ty = DT_INT64;
    cr_assert_eq(parse_text("1\n\n3\r\n\r\n5\n", &o, 1, &ty, &c, &n, err), 0, "%s", err);
    cr_assert_eq(n, 5, "with one column a blank line is a null record");
    cr_assert(dt_valid(&c, 0) && !dt_valid(&c, 1) && dt_valid(&c, 2) && !dt_valid(&c, 3));
    cr_assert_eq(((int64_t *)c.values)[4], 5);
    cr_assert_eq(((int64_t *)c.values)[1], 0, "a null reads as 0");
    dt_column_free(&c);
}

Test(dtable_csv, delimiters) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    dt_column_t c[3];
    int64_t n;
    char err[ERRLEN];
    o.delim = ';';
    cr_assert_eq(parse_text("a;\"b;c\";d,e\n", &o, 3, S3, c, &n, err), 0, "%s", err);
    cr_assert_str_eq(sat(&c[1], 0), "b;c");
    cr_assert_str_eq(sat(&c[2], 0), "d,e");
    free_cols(c, 3);
    o.delim = '\t';
    cr_assert_eq(parse_text("a b\t\"\t\"\t,\n", &o, 3, S3, c, &n, err), 0, "%s", err);
    cr_assert_str_eq(sat(&c[0], 0), "a b");
    cr_assert_str_eq(sat(&c[1], 0), "\t");
    cr_assert_str_eq(sat(&c[2], 0), ",");
    free_cols(c, 3);
    o.delim = '"';
    cr_assert_eq(parse_text("a\n", &o, 3, S3, c, &n, err), DT_CSV_EFORMAT);
}

Test(dtable_csv, nulls) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    const char *const markers[] = {"NA", "null"};
    o.nulls = markers;
    o.nnulls = 2;
    dt_type_t ty[5] = {DT_STRING, DT_INT64, DT_FLOAT64, DT_BOOL, DT_TIMESTAMP};
    dt_column_t c[5];
    int64_t n;
    char err[ERRLEN];
    const char *text = "NA,1,NA,true,null\n\"\",\"\",,\"NA\",\n,null,2.5,,2000-01-01\n"
                       "x,3,1,0,1970-01-01\n";
    cr_assert_eq(parse_text(text, &o, 5, ty, c, &n, err), 0, "%s", err);
    cr_assert_eq(n, 4);
    /* string: NA null, "" empty string, unquoted empty null, x */
    cr_assert_str_eq(sat(&c[0], 0), "<null>");
    cr_assert_str_eq(sat(&c[0], 1), "");
    cr_assert_str_eq(sat(&c[0], 2), "<null>");
    cr_assert_str_eq(sat(&c[0], 3), "x");
    bool want[4][5] = {{0, 1, 0, 1, 0}, {1, 0, 0, 0, 0}, {0, 0, 1, 0, 1}, {1, 1, 1, 1, 1}};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++)
            cr_assert_eq(dt_valid(&c[j], i), want[i][j], "row %d col %d", i, j);
    cr_assert_eq(((double *)c[2].values)[2], 2.5);
    cr_assert_eq(((double *)c[2].values)[0], 0.0);
    free_cols(c, 5);
    /* No null anywhere: no bitmap. */
    cr_assert_eq(parse_text("x,1,2,true,1970-01-01\n", &o, 5, ty, c, &n, err), 0);
    for (int j = 0; j < 5; j++)
        cr_assert_null(c[j].valid);
    free_cols(c, 5);
    /* Many rows, a null late: the bitmap covers the rows before it. */
    char big[4000] = "";
    for (int i = 0; i < 300; i++)
        strcat(big, i == 250 ? "\n" : "7\n");
    dt_type_t it = DT_INT64;
    cr_assert_eq(parse_text(big, &o, 1, &it, c, &n, err), 0);
    cr_assert_eq(n, 300);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(dt_valid(&c[0], i), i != 250, "row %d", i);
    free_cols(c, 1);
}

/* Parses one value of type t; returns the status, the value in *out (8 bytes). */
static int one(const char *text, dt_type_t t, void *out, char *err) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    const char *const names[] = {"a", "fare"};
    dt_type_t ty[2] = {DT_STRING, t};
    char buf[200];
    /* Row 0 holds a valid value of the type, row 1 the value under test (at byte 100 + 4 +
     * the length of row 0's value + 2). */
    snprintf(buf, sizeof buf, "x,%s\nx,%s\n", t == DT_TIMESTAMP ? "2000-01-01" : "1", text);
    dt_column_t c[2];
    int64_t n;
    int rc =
        dt_csv_parse(buf, strlen(buf), 0, strlen(buf), 100, &o, 2, ty, names, c, &n, err, ERRLEN);
    if (rc) return rc;
    if (t == DT_BOOL)
        *(uint8_t *)out = ((uint8_t *)c[1].values)[1];
    else
        memcpy(out, (char *)c[1].values + 8, 8);
    free_cols(c, 2);
    return 0;
}

Test(dtable_csv, int64) {
    char err[ERRLEN];
    int64_t v;
    cr_assert_eq(one("-9223372036854775808", DT_INT64, &v, err), 0);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(one("+9223372036854775807", DT_INT64, &v, err), 0);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(one("007", DT_INT64, &v, err), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(one("9223372036854775808", DT_INT64, &v, err), DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 104): column 1 ('fare'): '9223372036854775808' is out "
                          "of int64's range");
    cr_assert_eq(one("1.5", DT_INT64, &v, err), DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 104): column 1 ('fare'): '1.5' is not an int64");
    const char *bad[] = {"-", "+", " 1", "1 ", "1e3", "0x10", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(one(bad[i], DT_INT64, &v, err), DT_CSV_EFORMAT, "'%s'", bad[i]);
}

Test(dtable_csv, float64) {
    char err[ERRLEN];
    double v;
    struct {
        const char *s;
        double v;
    } ok[] = {{"1.5", 1.5},        {"-2e3", -2000.0},   {".25", 0.25},
              {"1E-2", 0.01},      {"0x1p3", 8.0},      {"+7", 7.0},
              {"1e999", INFINITY}, {"-inf", -INFINITY}, {"Infinity", INFINITY}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cr_assert_eq(one(ok[i].s, DT_FLOAT64, &v, err), 0, "'%s': %s", ok[i].s, err);
        cr_assert_eq(v, ok[i].v, "'%s' read as %g", ok[i].s, v);
    }
    cr_assert_eq(one("NaN", DT_FLOAT64, &v, err), 0);
    cr_assert(isnan(v));
    cr_assert_eq(one("abc", DT_FLOAT64, &v, err), DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 104): column 1 ('fare'): 'abc' is not a float64");
    const char *bad[] = {"\"1,5\"", "1.5x", " 1", "1 ", "e5", "\"\t2\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(one(bad[i], DT_FLOAT64, &v, err), DT_CSV_EFORMAT, "'%s'", bad[i]);
    /* A long value, truncated in the message. */
    char longv[120];
    memset(longv, '9', 100);
    longv[100] = 'x';
    longv[101] = '\0';
    cr_assert_eq(one(longv, DT_FLOAT64, &v, err), DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 104): column 1 ('fare'): "
                          "'9999999999999999999999999999999999999999...' is not a float64");
    longv[100] = '\0';
    cr_assert_eq(one(longv, DT_FLOAT64, &v, err), 0);
    cr_assert_eq(v, 1e100);
}

Test(dtable_csv, bool) {
    char err[ERRLEN];
    uint8_t v;
    const char *t[] = {"true", "TRUE", "True", "1"}, *f[] = {"false", "FaLsE", "0"};
    for (int i = 0; i < 4; i++)
        cr_assert(one(t[i], DT_BOOL, &v, err) == 0 && v == 1, "%s", t[i]);
    for (int i = 0; i < 3; i++)
        cr_assert(one(f[i], DT_BOOL, &v, err) == 0 && v == 0, "%s", f[i]);
    cr_assert_eq(one("yes", DT_BOOL, &v, err), DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 104): column 1 ('fare'): 'yes' is not a bool");
    cr_assert_eq(one("2", DT_BOOL, &v, err), DT_CSV_EFORMAT);
}

Test(dtable_csv, timestamp) {
    char err[ERRLEN];
    int64_t v;
    struct {
        const char *s;
        int64_t us;
    } ok[] = {{"1970-01-01", 0},
              {"2000-01-01T00:00:00Z", 946684800000000},
              {"2000-01-01 00:00:00", 946684800000000},
              {"2024-02-29T12:34:56.789", 1709210096789000},
              {"2021-06-15T08:00:00.123456+05:30", 1623724200123456},
              {"2021-06-15T08:00:00.1234569+05:30", 1623724200123456},
              {"1969-12-31T23:59:59.5-01:00", 3599500000},
              {"1900-03-01", -2203891200000000},
              {"2038-01-19T03:14:08+00:00", 2147483648000000}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cr_assert_eq(one(ok[i].s, DT_TIMESTAMP, &v, err), 0, "'%s': %s", ok[i].s, err);
        cr_assert_eq(v, ok[i].us, "'%s' read as %lld", ok[i].s, (long long)v);
    }
    cr_assert_eq(one("2023-02-29", DT_TIMESTAMP, &v, err), DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 113): column 1 ('fare'): '2023-02-29' is not a "
                          "timestamp");
    const char *bad[] = {"2000-1-01",
                         "2000-13-01",
                         "2000-01-01T",
                         "2000-01-01T24:00:00",
                         "2000-01-01T10:00",
                         "2000-01-01T10:00:00.",
                         "2000-01-01T10:00:00Zx",
                         "2000-01-01T10:00:00+0530",
                         "01/02/2000",
                         "2000-01-01x10:00:00",
                         "2000-01-01T10:00:00.1234567890"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(one(bad[i], DT_TIMESTAMP, &v, err), DT_CSV_EFORMAT, "'%s'", bad[i]);
}

/* dt_format_timestamp against the format it promises (years 0-9999 take a hand-written path,
 * the others snprintf), and its text read back: random instants over the whole range, with
 * and without fractions, before and after 1970. */
Test(dtable_csv, timestamp_format_round_trip) {
    const int64_t lo = -62167219200000000;   /* 0000-01-01 */
    const int64_t span = 315537897600000000; /* to 10000-01-01 */
    uint64_t x = 88172645463325252ull;
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t us = lo + (int64_t)(x % (uint64_t)span);
        if (k % 2) us -= us % 1000000; /* whole seconds: no fraction written */
        if (k == 0) us = 0;
        if (k == 1) us = lo;
        if (k == 2) us = lo + span - 1;
        char got[40], want[64];
        int n = dt_format_timestamp(us, got);
        int64_t s = us / 1000000, f = us % 1000000;
        if (f < 0) f += 1000000, s -= 1;
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        if (f)
            snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)f);
        else
            snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cr_assert_str_eq(got, want, "%lld", (long long)us);
        cr_assert_eq(n, (int)strlen(want));
        int64_t back;
        cr_assert(dt_parse_timestamp(got, (size_t)n, &back), "'%s'", got);
        cr_assert_eq(back, us, "'%s'", got);
    }
}

Test(dtable_csv, format_errors) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    dt_column_t c[3];
    int64_t n;
    char err[ERRLEN];
    const char *const names[] = {"a", "b", "c"};
    struct {
        const char *text, *msg;
    } cases[] = {
        {"1,2,3\n4,5\n", "record 2 (byte 6): 2 fields, expected 3"},
        {"1,2,3\n\n4,5,6,7\n", "record 2 (byte 7): 4 fields, expected 3"},
        {"1,2,3\n4,\"5,6\n", "record 2 (byte 6): column 1 ('b'): unterminated quoted field"},
        {"1,2,3\n4,5\"x,6\n",
         "record 2 (byte 6): column 1 ('b'): quote inside the unquoted field '5\"x'"},
        {"1,\"2\"x,3\n", "record 1 (byte 0): column 1 ('b'): 'x' after a closing quote"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = strlen(cases[i].text);
        err[0] = '\0';
        cr_assert_eq(
            dt_csv_parse(cases[i].text, len, 0, len, 0, &o, 3, S3, names, c, &n, err, ERRLEN),
            DT_CSV_EFORMAT, "case %zu", i);
        cr_assert_str_eq(err, cases[i].msg, "case %zu", i);
    }
    /* The byte is relative to the file with base; without names the column is bare. */
    const char *t = "1,2,3\n1,x,3\n";
    dt_type_t ty[3] = {DT_INT64, DT_INT64, DT_INT64};
    cr_assert_eq(dt_csv_parse(t, 12, 0, 12, 1000, &o, 3, ty, NULL, c, &n, err, ERRLEN),
                 DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 1006): column 1: 'x' is not an int64");
    /* Bad arguments are errors, not crashes. */
    cr_assert_eq(dt_csv_parse(t, 12, 5, 3, 0, &o, 3, ty, NULL, c, &n, err, ERRLEN), DT_CSV_EFORMAT);
    cr_assert_eq(dt_csv_parse(t, 12, 0, 13, 0, &o, 3, ty, NULL, c, &n, err, ERRLEN),
                 DT_CSV_EFORMAT);
    cr_assert_eq(dt_csv_parse(t, 12, 0, 12, 0, &o, 0, ty, NULL, c, &n, err, ERRLEN),
                 DT_CSV_EFORMAT);
    dt_type_t badt[3] = {DT_INT64, (dt_type_t)9, DT_INT64};
    cr_assert_eq(dt_csv_parse(t, 12, 0, 12, 0, &o, 3, badt, NULL, c, &n, err, ERRLEN),
                 DT_CSV_EFORMAT);
    /* Zero rows: columns exist, empty. */
    cr_assert_eq(dt_csv_parse(t, 12, 12, 12, 0, &o, 3, S3, NULL, c, &n, err, ERRLEN), 0);
    cr_assert_eq(n, 0);
    cr_assert_not_null(c[0].values);
    cr_assert_eq(c[0].offsets[0], 0);
    free_cols(c, 3);
}

Test(dtable_csv, infer) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    o.header = true;
    const char *const markers[] = {"NA"};
    o.nulls = markers;
    o.nnulls = 1;
    const char *text = "b,i,f,t,s,n,mixed,q\n"
                       "true,1,1,2020-01-01,x,,1,\"1\"\n"
                       "0,-5,2.5,2020-01-01T10:00:00Z,1,NA,2.5,\"\"\n"
                       "NA,,nan,,\"y\",,2020-01-01,3\n"
                       "1,99999999999999999999,1e5,2020-01-02 00:00:00.5,2,,abc,4\n";
    int nc;
    dt_type_t *ty;
    char **names;
    char err[ERRLEN];
    cr_assert_eq(dt_csv_infer(text, strlen(text), true, &o, &nc, &ty, &names, err, ERRLEN), 0, "%s",
                 err);
    cr_assert_eq(nc, 8);
    cr_assert_str_eq(names[6], "mixed");
    dt_type_t want[8] = {DT_BOOL,   DT_FLOAT64, DT_FLOAT64, DT_TIMESTAMP,
                         DT_STRING, DT_STRING,  DT_STRING,  DT_INT64};
    for (int j = 0; j < 8; j++)
        cr_assert_eq(ty[j], want[j], "column %s: %s", names[j], dt_type_name(ty[j]));
    free(ty);
    dt_csv_names_free(names, nc);

    /* The sample's cut record is ignored: the same answer whatever the cut. */
    const char *t2 = "a,b\n10,2\n3,4.5\n5,x";
    size_t len = strlen(t2);
    cr_assert_eq(dt_csv_infer(t2, len - 5, false, &o, &nc, &ty, &names, err, ERRLEN), 0);
    cr_assert(ty[0] == DT_INT64 && ty[1] == DT_INT64, "only '10,2' is complete");
    free(ty);
    dt_csv_names_free(names, nc);
    cr_assert_eq(dt_csv_infer(t2, len - 1, false, &o, &nc, &ty, &names, err, ERRLEN), 0);
    cr_assert(ty[0] == DT_INT64 && ty[1] == DT_FLOAT64);
    free(ty);
    dt_csv_names_free(names, nc);
    cr_assert_eq(dt_csv_infer(t2, len, true, &o, &nc, &ty, &names, err, ERRLEN), 0);
    cr_assert(ty[0] == DT_INT64 && ty[1] == DT_STRING);
    free(ty);
    dt_csv_names_free(names, nc);
    /* A header and no complete data record: every column string. */
    cr_assert_eq(dt_csv_infer("a,b\n10,", 7, false, &o, &nc, &ty, &names, err, ERRLEN), 0);
    cr_assert(nc == 2 && ty[0] == DT_STRING && ty[1] == DT_STRING);
    free(ty);
    dt_csv_names_free(names, nc);
    /* No header: names c0.., the first record is data. */
    o.header = false;
    cr_assert_eq(dt_csv_infer("10,2", 4, false, &o, &nc, &ty, &names, err, ERRLEN), DT_CSV_EMORE);
    cr_assert_eq(dt_csv_infer("10,2\n3", 6, false, &o, &nc, &ty, &names, err, ERRLEN), 0);
    cr_assert(nc == 2 && ty[0] == DT_INT64 && ty[1] == DT_INT64);
    cr_assert_str_eq(names[1], "c1");
    free(ty);
    dt_csv_names_free(names, nc);
    /* A malformed sampled record. */
    cr_assert_eq(dt_csv_infer("1,2\n3\n", 6, true, &o, &nc, &ty, &names, err, ERRLEN),
                 DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "record 2 (byte 4): 1 field, expected 2");
}

/* ---- the parallel split against Python's csv module ---- */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf_t;

static void put(sbuf_t *s, const char *p, size_t n) {
    if (s->n + n + 1 > s->cap) {
        s->cap = (s->n + n + 1) * 2;
        s->p = realloc(s->p, s->cap);
        cr_assert_not_null(s->p);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    s->p[s->n] = '\0';
}

/* A random file: nrec records of ncols fields (quoted when they must be, sometimes when they
 * need not), LF or CRLF, blank lines between records (when ncols > 1), sometimes no final
 * newline. */
static void gen_file(sbuf_t *f, int ncols, int nrec, char delim) {
    static const char *atoms[] = {"a",  "b",  "xyz",  "1",  " ",        ",",    ";", "\t",
                                  "\"", "\n", "\r\n", "\r", "\xc3\xa9", "\"\"", "q"};
    const int natoms = (int)(sizeof atoms / sizeof *atoms);
    for (int r = 0; r < nrec; r++) {
        if (ncols > 1 && rnd(8) == 0) {
            const char *bl = rnd(2) ? "\n" : "\r\n";
            put(f, bl, strlen(bl));
        }
        for (int j = 0; j < ncols; j++) {
            if (j) put(f, &delim, 1);
            sbuf_t v = {0};
            put(&v, "", 0);
            int k = (int)rnd(7);
            for (int a = 0; a < k; a++) {
                const char *s = atoms[rnd(natoms)];
                put(&v, s, strlen(s));
            }
            bool special = strpbrk(v.p, "\"\n\r") || memchr(v.p, delim, v.n);
            if (special || rnd(4) == 0) {
                put(f, "\"", 1);
                for (size_t i = 0; i < v.n; i++) {
                    put(f, &v.p[i], 1);
                    if (v.p[i] == '"') put(f, "\"", 1);
                }
                put(f, "\"", 1);
            } else {
                put(f, v.p, v.n);
            }
            free(v.p);
        }
        if (r < nrec - 1 || rnd(2)) {
            if (rnd(2)) put(f, "\r", 1);
            put(f, "\n", 1);
        }
    }
}

/* Appends a row dump: fields as 'x' + hex, joined by '|', a newline; null reads as "". */
static void dump_rows(sbuf_t *d, dt_column_t *c, int ncols, int64_t n) {
    static const char hx[] = "0123456789abcdef";
    for (int64_t i = 0; i < n; i++) {
        for (int j = 0; j < ncols; j++) {
            put(d, j ? "|x" : "x", j ? 2 : 1);
            if (!dt_valid(&c[j], i)) continue;
            for (int64_t b = c[j].offsets[i]; b < c[j].offsets[i + 1]; b++) {
                unsigned char ch = (unsigned char)((char *)c[j].values)[b];
                char h[2] = {hx[ch >> 4], hx[ch & 15]};
                put(d, h, 2);
            }
        }
        put(d, "\n", 1);
    }
}

/* Python's reading of the file, in dump_rows' format (header and blank lines dropped). */
static void python_dump(const char *path, char delim, bool header, int ncols, sbuf_t *out) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import csv,sys\n"
             "f=open(sys.argv[1],newline=\"\",encoding=\"utf-8\")\n"
             "rows=list(csv.reader(f,delimiter=sys.argv[2],strict=True))\n"
             "rows=rows[1:] if sys.argv[3]==\"1\" else rows\n"
             "for r in rows:\n"
             "  if not r and int(sys.argv[4])>1: continue\n"
             "  r=r or [\"\"]\n"
             "  print(\"|\".join(\"x\"+c.encode().hex() for c in r))' '%s' '%c' %d %d",
             path, delim, header ? 1 : 0, ncols);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, p)) > 0)
        put(out, buf, k);
    cr_assert_eq(pclose(p), 0, "python3 failed on %s", path);
}

/* Reads f as ranks would: ranges [offs[k], offs[k+1]), scanned, resolved, each parsed with
 * the bytes after it that complete its last record (read on 7 bytes at a time). */
static void read_ranges(const sbuf_t *f, const size_t *offs, int nch, const dt_csv_opts_t *o,
                        int ncols, const dt_type_t *ty, sbuf_t *d) {
    dt_csv_scan_t sc[8];
    int64_t first[8], last[8];
    for (int k = 0; k < nch; k++)
        dt_csv_scan(f->p + offs[k], offs[k + 1] - offs[k], o, &sc[k]);
    cr_assert(dt_csv_resolve(sc, nch, o, first, last));
    size_t expect_start = 0;
    bool have_expect = false;
    for (int k = 0; k < nch; k++) {
        size_t ck = offs[k], clen = offs[k + 1] - offs[k];
        if (first[k] < 0) {
            cr_assert_eq(last[k], -1);
            continue;
        }
        cr_assert(first[k] <= last[k] && last[k] < (int64_t)clen);
        if (have_expect)
            cr_assert_eq(ck + (size_t)first[k], expect_start,
                         "range %d starts at %zu, the previous one's records end at %zu", k,
                         ck + (size_t)first[k], expect_start);
        size_t avail = clen, end;
        for (;;) {
            int64_t e = dt_csv_record_end(f->p + ck, avail, (size_t)last[k], o, false);
            if (e >= 0) {
                end = (size_t)e;
                break;
            }
            if (ck + avail == f->n) {
                end = avail;
                break;
            }
            avail = avail + 7 < f->n - ck ? avail + 7 : f->n - ck;
        }
        dt_column_t c[8];
        int64_t n;
        char err[ERRLEN];
        cr_assert_eq(dt_csv_parse(f->p + ck, end, (size_t)first[k], clen, (int64_t)ck, o, ncols, ty,
                                  NULL, c, &n, err, ERRLEN),
                     0, "range %d: %s", k, err);
        dump_rows(d, c, ncols, n);
        free_cols(c, ncols);
        expect_start = ck + end;
        have_expect = true;
    }
    if (have_expect) cr_assert_eq(expect_start, f->n, "the last record ends at the file's end");
}

Test(dtable_csv, split_matches_python, .timeout = 120) {
    struct {
        int ncols, nrec;
        char delim;
        bool header;
    } files[] = {{3, 40, ',', false},  {1, 60, ',', false}, {5, 25, ';', true},
                 {2, 50, '\t', false}, {4, 30, ',', true},  {3, 8, ',', false}};
    char path[] = "/tmp/dagr_test_csv_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    for (size_t fi = 0; fi < sizeof files / sizeof *files; fi++) {
        rng_state = 12345 + fi;
        int ncols = files[fi].ncols;
        sbuf_t f = {0};
        put(&f, "", 0);
        gen_file(&f, ncols, files[fi].nrec, files[fi].delim);
        FILE *w = fopen(path, "wb");
        cr_assert_not_null(w);
        cr_assert_eq(fwrite(f.p, 1, f.n, w), f.n);
        fclose(w);
        sbuf_t ref = {0};
        put(&ref, "", 0);
        python_dump(path, files[fi].delim, files[fi].header, ncols, &ref);
        cr_assert_gt(ref.n, 100, "file %zu: Python read too little", fi);

        dt_csv_opts_t o;
        dt_csv_opts_init(&o);
        o.delim = files[fi].delim;
        o.header = files[fi].header;
        dt_type_t ty[8];
        for (int j = 0; j < ncols; j++)
            ty[j] = DT_STRING;
        int hc;
        char **names;
        size_t hend;
        char err[ERRLEN];
        cr_assert_eq(dt_csv_header(f.p, f.n, true, &o, &hc, &names, &hend, err, ERRLEN), 0);
        cr_assert_eq(hc, ncols);
        dt_csv_names_free(names, hc);

        /* Two ranges, cut at every byte; then 3-7 ranges at random cuts (some empty). */
        for (size_t cut = 0; cut <= f.n; cut++) {
            size_t offs[3] = {0, cut, f.n};
            sbuf_t d = {0};
            put(&d, "", 0);
            read_ranges(&f, offs, 2, &o, ncols, ty, &d);
            cr_assert_str_eq(d.p, ref.p, "file %zu cut at %zu", fi, cut);
            free(d.p);
        }
        for (int trial = 0; trial < 300; trial++) {
            int nch = 3 + (int)rnd(5);
            size_t offs[9];
            offs[0] = 0;
            offs[nch] = f.n;
            for (int k = 1; k < nch; k++)
                offs[k] = rnd((uint32_t)f.n + 1);
            for (int a = 1; a < nch; a++) /* sort the cuts */
                for (int b = a + 1; b < nch; b++)
                    if (offs[b] < offs[a]) {
                        size_t t = offs[a];
                        offs[a] = offs[b];
                        offs[b] = t;
                    }
            sbuf_t d = {0};
            put(&d, "", 0);
            read_ranges(&f, offs, nch, &o, ncols, ty, &d);
            cr_assert_str_eq(d.p, ref.p, "file %zu, %d ranges, trial %d", fi, nch, trial);
            free(d.p);
        }
        free(ref.p);
        free(f.p);
    }
    unlink(path);
}

/* Strings must be valid UTF-8 (RFC 3629): the message names the record and the byte. */
Test(dtable_csv, utf8) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    char err[ERRLEN];
    dt_column_t c[3];
    int64_t n;
    cr_assert_eq(parse_text("a,\xc3\xa9t\xc3\xa9,\xf0\x9f\x98\x80\n\xe2\x82\xac,x,\"\xc3\xa9,\"\n",
                            &o, 3, S3, c, &n, err),
                 0, "%s", err);
    cr_assert_eq(n, 2);
    free_cols(c, 3);
    const char *bad[] = {"\xc3",             /* cut */
                         "\xc0\xaf",         /* overlong */
                         "\xed\xa0\x80",     /* a surrogate */
                         "\xf4\x90\x80\x80", /* past U+10FFFF */
                         "\x80",             /* a lone continuation */
                         "ab\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[64];
        snprintf(text, sizeof text, "a,b,c\nx,y%s,z\n", bad[i]);
        cr_assert_eq(parse_text(text, &o, 3, S3, c, &n, err), DT_CSV_EFORMAT, "case %zu", i);
        char want[128];
        snprintf(want, sizeof want,
                 "record 2 (byte 6): column 1: invalid UTF-8 at byte %d of the field",
                 i == 5 ? 3 : 1);
        cr_assert_str_eq(err, want, "case %zu", i);
    }
}

/* With line_base, messages name the file's line, counting quoted newlines. */
Test(dtable_csv, line_numbers) {
    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    o.line_base = 10;
    char err[ERRLEN];
    dt_column_t c[3];
    int64_t n;
    const char *text = "a,\"b\nc\",d\n\ne,f,g\nh,i\n";
    cr_assert_eq(
        dt_csv_parse(text, strlen(text), 0, strlen(text), 100, &o, 3, S3, NULL, c, &n, err, ERRLEN),
        DT_CSV_EFORMAT);
    cr_assert_str_eq(err, "line 14 (byte 117): 2 fields, expected 3", "%s", err);
}

/* Decimal floats, which a fast path reads (csv.c's fast_float), give strtod's double bit for
 * bit: random digit strings of every length around the path's limits (19 digits, 2^53, 22
 * decimals), signs, leading and trailing zeros. */
Test(dtable_csv, float_fast_path_matches_strtod) {
    char err[ERRLEN], text[64];
    uint64_t s = 12345;
    for (int k = 0; k < 20000; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int intd = (int)(s >> 60) % 12, fracd = (int)(s >> 52) % 26, at = 0;
        if (s & 1) text[at++] = '-';
        if ((s >> 1 & 7) == 0) text[at++] = '0';
        uint64_t r = s;
        for (int i = 0; i < intd; i++, r = r * 2862933555777941757ull + 3037000493ull)
            text[at++] = (char)('0' + (r >> 59) % 10);
        if (fracd || !intd) {
            text[at++] = '.';
            for (int i = 0; i < fracd + !intd; i++, r = r * 2862933555777941757ull + 3037000493ull)
                text[at++] = (char)('0' + (r >> 59) % 10);
        }
        text[at] = 0;
        double got, want = strtod(text, NULL);
        cr_assert_eq(one(text, DT_FLOAT64, &got, err), 0, "'%s': %s", text, err);
        cr_assert(memcmp(&got, &want, 8) == 0, "'%s': %.17g, strtod %.17g", text, got, want);
    }
}
