/* table_gen: the input data of table_bench (benchmarks/table_bench.sh), two CSV files with a
 * header line, written fast and the same for the same seed.
 *
 *   build/benchmarks/table_gen OUTDIR [--rows N] [--dims M] [--keys K] [--seed S]
 *
 * OUTDIR/trips.csv, N rows (default 10,000,000):
 *   id        int64, the row number 0..N-1
 *   key       int64, uniform over 0..K-1 (K = --keys, default 100,000)
 *   cat       string, one of 100 uniformly: "cat_001" .. "cat_099", and every 10th one
 *             (0, 10, .., 90) is "city, 00" .. "city, 90", written quoted ("\"city, 10\"")
 *   fare      float64, 2.5 + an exponential of mean 12
 *   tip       float64, null (an empty field) in about 10% of rows, else fare x U(0, 0.3)
 *   distance  float64, 0.1 + an exponential of mean 3
 *   ts        timestamp, ISO 8601 UTC to the second ("2024-01-05T13:45:10Z"), uniform over
 *             the year 2024
 * Floats are rounded to 6 decimals and printed with 1 to 6 of them.
 *
 * OUTDIR/dims.csv, M rows (default 1,000,000):
 *   key       int64, 0..M-1 (so with M >= K every trips key matches exactly one row)
 *   name      string, "name_<key>"
 *   weight    float64, U(0, 100)
 *
 * Row i of trips takes its random numbers from its own window of a splitmix64 stream (the
 * state jumps to seed' + 8 i gamma), so a row does not depend on how the rows before it were
 * made. Messages go to stderr; the last line on stdout is one JSON object with the rows,
 * bytes and seconds of each file. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GAMMA 0x9e3779b97f4a7c15ULL
#define NCAT 100
#define BUF_BYTES (8u << 20)
#define ROW_MAX 256           /* longest row we can write, with margin */
#define YEAR_START_DAYS 19723 /* 2024-01-01 as days since 1970-01-01 */
#define YEAR_DAYS 366

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t next64(uint64_t *state) {
    return mix64(*state += GAMMA);
}

/* Uniform in (0, 1]: never 0, so log() of it is finite. */
static double unit_open0(uint64_t *state) {
    return (double)((next64(state) >> 11) + 1) * 0x1p-53;
}

/* Uniform integer in [0, n) by a 64x64 -> high 64 multiply (bias < n / 2^64). */
static uint64_t below(uint64_t *state, uint64_t n) {
    return (uint64_t)(((unsigned __int128)next64(state) * n) >> 64);
}

/* An output file with a big buffer; the buffer is flushed whenever less than ROW_MAX bytes are
 * left, so one row can always be formatted straight into it. */
typedef struct {
    FILE *f;
    const char *path;
    char *buf;
    size_t len;
    uint64_t bytes;
} out_t;

static void die(const char *what, const char *path) {
    fprintf(stderr, "table_gen: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void out_flush(out_t *o) {
    if (o->len && fwrite(o->buf, 1, o->len, o->f) != o->len) die("cannot write", o->path);
    o->bytes += o->len;
    o->len = 0;
}

static void out_open(out_t *o, const char *path) {
    o->path = path;
    o->f = fopen(path, "wb");
    if (!o->f) die("cannot create", path);
    o->buf = malloc(BUF_BYTES);
    if (!o->buf) die("out of memory for", path);
    o->len = 0;
    o->bytes = 0;
}

static void out_close(out_t *o) {
    out_flush(o);
    if (fclose(o->f) != 0) die("cannot close", o->path);
    free(o->buf);
}

/* Writes v >= 0 in decimal; returns the end. */
static char *put_u64(char *p, uint64_t v) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Writes x >= 0 rounded to 6 decimals with its trailing zeros dropped, keeping at least one
 * decimal ("12.5", "3.0", "0.000001"). */
static char *put_fixed6(char *p, double x) {
    uint64_t m = (uint64_t)llround(x * 1e6);
    p = put_u64(p, m / 1000000);
    *p++ = '.';
    uint32_t frac = (uint32_t)(m % 1000000);
    char d[6];
    for (int i = 5; i >= 0; i--) {
        d[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    int keep = 6;
    while (keep > 1 && d[keep - 1] == '0')
        keep--;
    memcpy(p, d, (size_t)keep);
    return p + keep;
}

static char *put2(char *p, unsigned v) {
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

/* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int64_t parse_count(const char *opt, const char *s) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "table_gen: %s wants a non-negative integer, not '%s'\n", opt, s);
        exit(2);
    }
    return (int64_t)v;
}

static void write_trips(out_t *o, int64_t rows, uint64_t keys, uint64_t seed) {
    /* The category fields and the dates, as written, made once. */
    char cat[NCAT][16];
    size_t cat_len[NCAT];
    for (int c = 0; c < NCAT; c++) {
        int n = c % 10 == 0 ? snprintf(cat[c], sizeof cat[c], "\"city, %02d\"", c)
                            : snprintf(cat[c], sizeof cat[c], "cat_%03d", c);
        cat_len[c] = (size_t)n;
    }
    char date[YEAR_DAYS][11];
    for (int i = 0; i < YEAR_DAYS; i++) {
        int y;
        unsigned m, d;
        civil_from_days(YEAR_START_DAYS + i, &y, &m, &d);
        char *p = put_u64(date[i], (uint64_t)y);
        *p++ = '-';
        p = put2(p, m);
        *p++ = '-';
        put2(p, d);
        date[i][10] = 'T';
    }

    static const char header[] = "id,key,cat,fare,tip,distance,ts\n";
    memcpy(o->buf, header, sizeof header - 1);
    o->len = sizeof header - 1;
    uint64_t base = mix64(seed ^ 0x7472697073ULL); /* "trips" */
    for (int64_t i = 0; i < rows; i++) {
        if (BUF_BYTES - o->len < ROW_MAX) out_flush(o);
        uint64_t st = base + (uint64_t)i * 8 * GAMMA;
        char *p = o->buf + o->len;
        p = put_u64(p, (uint64_t)i);
        *p++ = ',';
        p = put_u64(p, below(&st, keys));
        *p++ = ',';
        unsigned c = (unsigned)below(&st, NCAT);
        memcpy(p, cat[c], cat_len[c]);
        p += cat_len[c];
        *p++ = ',';
        double fare = 2.5 - 12.0 * log(unit_open0(&st));
        p = put_fixed6(p, fare);
        *p++ = ',';
        uint64_t r = next64(&st);
        /* One draw for both: its low 53 bits give the tip fraction, its top bits the null. */
        if (r % 10 != 0) p = put_fixed6(p, fare * 0.3 * (double)(r >> 11) * 0x1p-53);
        *p++ = ',';
        p = put_fixed6(p, 0.1 - 3.0 * log(unit_open0(&st)));
        *p++ = ',';
        uint64_t sec = below(&st, (uint64_t)YEAR_DAYS * 86400);
        memcpy(p, date[sec / 86400], 11);
        p += 11;
        unsigned s = (unsigned)(sec % 86400);
        p = put2(p, s / 3600);
        *p++ = ':';
        p = put2(p, s / 60 % 60);
        *p++ = ':';
        p = put2(p, s % 60);
        *p++ = 'Z';
        *p++ = '\n';
        o->len = (size_t)(p - o->buf);
    }
}

static void write_dims(out_t *o, int64_t rows, uint64_t seed) {
    static const char header[] = "key,name,weight\n";
    memcpy(o->buf, header, sizeof header - 1);
    o->len = sizeof header - 1;
    uint64_t st = mix64(seed ^ 0x64696d73ULL); /* "dims" */
    for (int64_t k = 0; k < rows; k++) {
        if (BUF_BYTES - o->len < ROW_MAX) out_flush(o);
        char *p = o->buf + o->len;
        p = put_u64(p, (uint64_t)k);
        memcpy(p, ",name_", 6);
        p = put_u64(p + 6, (uint64_t)k);
        *p++ = ',';
        p = put_fixed6(p, 100.0 * (double)(next64(&st) >> 11) * 0x1p-53);
        *p++ = '\n';
        o->len = (size_t)(p - o->buf);
    }
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int64_t rows = 10000000, dims = 1000000, keys = 100000;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            if (dir) goto usage;
            dir = a;
            continue;
        }
        if (i + 1 >= argc) goto usage;
        if (!strcmp(a, "--rows"))
            rows = parse_count(a, argv[++i]);
        else if (!strcmp(a, "--dims"))
            dims = parse_count(a, argv[++i]);
        else if (!strcmp(a, "--keys"))
            keys = parse_count(a, argv[++i]);
        else if (!strcmp(a, "--seed"))
            seed = (uint64_t)parse_count(a, argv[++i]);
        else
            goto usage;
    }
    if (!dir) goto usage;
    if (keys < 1) {
        fprintf(stderr, "table_gen: --keys must be at least 1\n");
        return 2;
    }
    if (dims < keys)
        fprintf(stderr,
                "table_gen: warning: --dims %lld < --keys %lld, so some trips keys "
                "have no dims row\n",
                (long long)dims, (long long)keys);

    size_t dl = strlen(dir);
    char *trips_path = malloc(dl + 16), *dims_path = malloc(dl + 16);
    if (!trips_path || !dims_path) die("out of memory for", dir);
    snprintf(trips_path, dl + 16, "%s/trips.csv", dir);
    snprintf(dims_path, dl + 16, "%s/dims.csv", dir);

    out_t o;
    double t0 = now_s();
    out_open(&o, trips_path);
    write_trips(&o, rows, (uint64_t)keys, seed);
    out_close(&o);
    uint64_t trips_bytes = o.bytes;
    double t1 = now_s();
    out_open(&o, dims_path);
    write_dims(&o, dims, seed);
    out_close(&o);
    double t2 = now_s();
    printf("{\"bench\":\"table_gen\",\"seed\":%llu,\"keys\":%lld,\"trips_rows\":%lld,"
           "\"trips_bytes\":%llu,\"trips_seconds\":%.3f,\"dims_rows\":%lld,\"dims_bytes\":%llu,"
           "\"dims_seconds\":%.3f}\n",
           (unsigned long long)seed, (long long)keys, (long long)rows,
           (unsigned long long)trips_bytes, t1 - t0, (long long)dims, (unsigned long long)o.bytes,
           t2 - t1);
    free(trips_path);
    free(dims_path);
    return 0;

usage:
    fprintf(stderr,
            "usage: table_gen OUTDIR [--rows N] [--dims M] [--keys K] [--seed S]\n"
            "writes OUTDIR/trips.csv (N rows, default 10000000) and OUTDIR/dims.csv (M rows, "
            "default 1000000)\n");
    return 2;
}
