/* Writing a table as CSV (dagr_dtable_write_csv).
 *
 * One file: the ranks write their partitions into it at once, each at its own offset.
 *   - a format task per partition (on its rank) renders the rows into a text handle (size
 *     decided by the task) and its byte count into an 8-byte size handle;
 *   - a header task on rank 0 creates (truncates) the file, writes the header line, and puts
 *     its length into a small handle that every write task reads (so no write comes before
 *     the file exists);
 *   - a write task per partition (on its rank) reads the header's length and the sizes of the
 *     partitions before it (8 bytes each), and pwrite()s its text at their sum: the texts
 *     never travel between ranks, only the sizes do;
 *   - a last task on rank 0 reads every size and ftruncate()s the file to the total.
 * Per partition: one task per partition formats and writes its own file.
 *
 * Formatting is a row loop over the columns with one switch per value; the common values
 * take fast paths (integers by hand, floats with few decimals exactly, see put_float) and
 * fall back to snprintf, under the C locale, for the rest. */
#include "dtable_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void dagr_csv_write_opts_init(dagr_csv_write_opts_t *o) {
    if (!o) return;
    o->delim = ',';
    o->header = true;
    o->null_text = "";
    o->per_partition = false;
}

/* ---- text building ---- */

typedef struct text {
    char *p;
    size_t n, cap;
    bool oom;
    bool fixed; /* p is a buffer of cap bytes that cannot grow (rows_bound makes it enough) */
} text_t;

static bool text_reserve(text_t *t, size_t more) {
    if (t->oom) return false;
    if (t->n + more <= t->cap) return true;
    if (t->fixed) return t->oom = true, false;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->n + more)
        cap *= 2;
    char *p = dt_realloc(t->p, cap);
    if (!p) {
        t->oom = true;
        return false;
    }
    t->p = p;
    t->cap = cap;
    return true;
}

static void text_put(text_t *t, const char *s, size_t n) {
    if (!text_reserve(t, n)) return;
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

/* The C locale for snprintf and strtod (a program's LC_NUMERIC must not change the file). */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) {
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Decimal digits of v into the end of buf (which has 20 bytes at least); returns the start. */
static char *u64_digits(uint64_t v, char *end) {
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

/* At most 24 bytes at d. */
static size_t fmt_int(int64_t v, char *d) {
    char buf[24], *e = buf + sizeof buf;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *s = u64_digits(u, e);
    if (v < 0) *--s = '-';
    size_t n = (size_t)(e - s);
    memcpy(d, s, n);
    return n;
}

/* The shortest text that reads back (strtod) to v: the first of %.15g, %.16g and %.17g
 * that does. The fast path: v in [1e-4, 1e9) equal to r / 10^6 for an integer r (prices,
 * coordinates, most data written with a few decimals). Then the decimal r / 10^6 has at
 * most 15 significant digits, and those are exactly what %.15g prints (no exponent in that
 * range; trailing zeros cut): it reads back to v (r / 1e6, one correctly rounded division,
 * is the double nearest the decimal), and nothing shorter does (two decimals of at most 15
 * significant digits are never the same double). At most 32 bytes at d. */
static size_t fmt_float(double v, char *d) {
    if (isnan(v)) return memcpy(d, "nan", 3), 3;
    if (isinf(v)) return v > 0 ? (memcpy(d, "inf", 3), 3) : (memcpy(d, "-inf", 4), 4);
    double a = fabs(v);
    if (a >= 1e-4 && a < 1e9) {
        double r = nearbyint(a * 1e6);
        if (r / 1e6 == a) {
            uint64_t u = (uint64_t)r, ip = u / 1000000, fp = u % 1000000;
            size_t n = 0;
            if (v < 0) d[n++] = '-';
            char buf[24], *e = buf + sizeof buf, *s = u64_digits(ip, e);
            memcpy(d + n, s, (size_t)(e - s));
            n += (size_t)(e - s);
            if (fp) {
                d[n++] = '.';
                int digits = 6;
                while (fp % 10 == 0) {
                    fp /= 10;
                    digits--;
                }
                for (int k = digits - 1; k >= 0; k--) {
                    d[n + (size_t)k] = (char)('0' + fp % 10);
                    fp /= 10;
                }
                n += (size_t)digits;
            }
            return n;
        }
    }
    locale_t old = uselocale(c_locale);
    char tmp[32]; /* formatted here, then copied: d may be any room of 32 bytes */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 17 || strtod_l(tmp, NULL, c_locale) == v) break;
    }
    uselocale(old);
    memcpy(d, tmp, (size_t)n);
    return (size_t)n;
}

/* Whether a string field must be quoted: empty (so that "" stays apart from a null), or
 * holding the delimiter, a quote, CR or LF. */
static bool needs_quotes(const char *s, size_t n, char delim) {
    if (n == 0) return true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == delim || c == '"' || c == '\n' || c == '\r') return true;
    }
    return false;
}

static void put_field(text_t *t, const char *s, size_t n, char delim) {
    if (!needs_quotes(s, n, delim)) {
        text_put(t, s, n);
        return;
    }
    if (!text_reserve(t, 2 * n + 2)) return;
    char *d = t->p + t->n;
    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') *d++ = '"';
        *d++ = s[i];
    }
    *d++ = '"';
    t->n = (size_t)(d - t->p);
}

/* What formatting needs of the options. */
typedef struct fmt_opts {
    char delim;
    bool header;
    const char *null_text;
    size_t null_len;
} fmt_opts_t;

static void put_header(text_t *t, int ncols, const char *const *names, const fmt_opts_t *o) {
    for (int j = 0; j < ncols; j++) {
        if (j) text_put(t, &o->delim, 1);
        put_field(t, names[j], strlen(names[j]), o->delim);
    }
    text_put(t, "\n", 1);
}

/* Appends the rows of p to t. */
static void put_rows(text_t *t, const dt_part_t *p, const fmt_opts_t *o) {
    for (int64_t i = 0; i < p->nrows && !t->oom; i++) {
        for (int j = 0; j < p->ncols; j++) {
            const dt_column_t *c = &p->cols[j];
            if (!text_reserve(t, 48)) return;
            if (j) t->p[t->n++] = o->delim;
            if (!dt_valid(c, i)) {
                text_put(t, o->null_text, o->null_len);
                continue;
            }
            char *d = t->p + t->n;
            switch (c->type) {
            case DT_INT64:
                t->n += fmt_int(((const int64_t *)c->values)[i], d);
                break;
            case DT_FLOAT64:
                t->n += fmt_float(((const double *)c->values)[i], d);
                break;
            case DT_BOOL:
                if (((const uint8_t *)c->values)[i])
                    memcpy(d, "true", 4), t->n += 4;
                else
                    memcpy(d, "false", 5), t->n += 5;
                break;
            case DT_TIMESTAMP: {
                char ts[40];
                int n = dt_format_timestamp(((const int64_t *)c->values)[i], ts);
                memcpy(d, ts, (size_t)n);
                t->n += (size_t)n;
                break;
            }
            case DT_STRING:
                put_field(t, (const char *)c->values + c->offsets[i],
                          (size_t)(c->offsets[i + 1] - c->offsets[i]), o->delim);
                break;
            }
        }
        text_put(t, "\n", 1);
    }
}

/* An upper bound of the bytes put_rows writes for p (and 64 bytes of slack, so that its
 * 48-byte reservations before each value always fit). */
static size_t rows_bound(const dt_part_t *p, const fmt_opts_t *o) {
    size_t per_row = 1, n = (size_t)p->nrows, total = 64;
    for (int j = 0; j < p->ncols; j++) {
        const dt_column_t *c = &p->cols[j];
        size_t w = c->type == DT_INT64     ? 20
                   : c->type == DT_FLOAT64 ? 32
                   : c->type == DT_BOOL    ? 5
                                           : 40;
        if (c->type == DT_STRING) {
            total += 2 * c->nbytes + n * (3 + o->null_len);
            w = 0;
        }
        per_row += 1 + (w > o->null_len ? w : o->null_len);
    }
    return total + per_row * n;
}

/* ---- files ---- */

/* Writes buf[0, n) at off of fd; DAGR_ERR_IO naming path on failure (recorded in the task). */
static bool write_at(const dagr_task_view_t *task, int fd, const char *path, const char *buf,
                     size_t n, off_t off) {
    while (n > 0) {
        ssize_t w = pwrite(fd, buf, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            dagr_task_fail(task, DAGR_ERR_IO, "cannot write to '%s': %s", path,
                           w < 0 ? strerror(errno) : "no progress");
            return false;
        }
        buf += w;
        n -= (size_t)w;
        off += w;
    }
    return true;
}

static int open_file(const dagr_task_view_t *task, const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC, 0666);
    if (fd < 0)
        dagr_task_fail(task, DAGR_ERR_IO, "cannot open '%s' for writing: %s", path,
                       strerror(errno));
    return fd;
}

static bool close_file(const dagr_task_view_t *task, int fd, const char *path, bool ok) {
    if (close(fd) != 0 && ok) {
        dagr_task_fail(task, DAGR_ERR_IO, "cannot close '%s': %s", path, strerror(errno));
        return false;
    }
    return ok;
}

/* ---- task arguments: [fmt_opts fields][path][null_text][the schema for the header] ---- */

static dagr_status_t pack_args(dt_args_t *a, const dagr_dtable_t *t, const char *path,
                               const dagr_csv_write_opts_t *o) {
    char delim = o->delim;
    uint8_t header = o->header;
    dt_args_put(a, &delim, 1);
    dt_args_put(a, &header, 1);
    dt_args_str(a, path);
    dt_args_str(a, o->null_text);
    return dt_args_schema(a, t->ncols, t->names, t->types);
}

typedef struct unpacked {
    fmt_opts_t o;
    const char *path;
    int ncols;
    const char **names;
    dt_type_t *types;
} unpacked_t;

static bool unpack_args(const dagr_task_view_t *task, unpacked_t *u) {
    dt_argr_t r;
    dt_argr_init(&r, task);
    uint8_t header;
    dt_argr_get(&r, &u->o.delim, 1);
    dt_argr_get(&r, &header, 1);
    u->o.header = header;
    u->path = dt_argr_str(&r);
    u->o.null_text = dt_argr_str(&r);
    u->o.null_len = strlen(u->o.null_text);
    if (!dt_argr_schema(&r, &u->ncols, &u->names, &u->types)) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
        return false;
    }
    return true;
}

static void unpacked_free(unpacked_t *u) {
    dt_free(u->names);
    dt_free(u->types);
}

/* ---- one file ---- */

/* buf 0: the partition (read); 1: the text (written, resized); 2: its size (int64). */
static dagr_task_result_t format_task(const dagr_task_view_t *task) {
    pthread_once(&c_locale_once, c_locale_init);
    unpacked_t u;
    if (!unpack_args(task, &u)) return DAGR_TASK_ERROR;
    dt_part_t p;
    dagr_task_result_t res = DAGR_TASK_ERROR;
    if (!dt_task_view(task, 0, &p)) goto out;
    /* Rendered straight into the handle, sized for the worst case first (the pages past
     * what is written are never touched), then cut to what was written. */
    size_t bound = rows_bound(&p, &u.o);
    if (task_resize_raw(task, 1, bound) != DAGR_OK) {
        dt_part_free(&p);
        goto out;
    }
    text_t t = {.p = task->buf[1], .cap = bound, .fixed = true};
    put_rows(&t, &p, &u.o);
    dt_part_free(&p);
    if (t.oom) {
        dagr_task_fail(task, DAGR_ERR_INTERNAL, "write_csv: the text outgrew its bound");
    } else if (task_resize_raw(task, 1, t.n) == DAGR_OK) {
        int64_t n = (int64_t)t.n;
        memcpy(task->buf[2], &n, sizeof n);
        res = DAGR_TASK_DONE;
    }
out:
    unpacked_free(&u);
    return res;
}

/* buf 0: the header's length (int64, written). Creates or truncates the file. */
static dagr_task_result_t header_task(const dagr_task_view_t *task) {
    unpacked_t u;
    if (!unpack_args(task, &u)) return DAGR_TASK_ERROR;
    text_t t = {0};
    if (u.o.header) put_header(&t, u.ncols, u.names, &u.o);
    dagr_task_result_t res = DAGR_TASK_ERROR;
    if (t.oom) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
    } else {
        int fd = open_file(task, u.path, O_WRONLY | O_CREAT | O_TRUNC);
        if (fd >= 0) {
            bool ok = write_at(task, fd, u.path, t.p, t.n, 0);
            if (close_file(task, fd, u.path, ok)) {
                int64_t n = (int64_t)t.n;
                memcpy(task->buf[0], &n, sizeof n);
                res = DAGR_TASK_DONE;
            }
        }
    }
    dt_free(t.p);
    unpacked_free(&u);
    return res;
}

/* buf 0: the header's length; 1 .. nbuf - 2: the sizes of the partitions before this one;
 * nbuf - 1: the text. */
static dagr_task_result_t write_task(const dagr_task_view_t *task) {
    unpacked_t u;
    if (!unpack_args(task, &u)) return DAGR_TASK_ERROR;
    int64_t off = 0;
    for (int i = 0; i < task->nbuf - 1; i++) {
        int64_t n;
        memcpy(&n, task->buf[i], sizeof n);
        off += n;
    }
    int last = task->nbuf - 1;
    dagr_task_result_t res = DAGR_TASK_ERROR;
    if (task->bytes[last] == 0) {
        res = DAGR_TASK_DONE;
    } else {
        int fd = open_file(task, u.path, O_WRONLY);
        if (fd >= 0) {
            bool ok = write_at(task, fd, u.path, task->buf[last], task->bytes[last], (off_t)off);
            if (close_file(task, fd, u.path, ok)) res = DAGR_TASK_DONE;
        }
    }
    unpacked_free(&u);
    return res;
}

/* buf 0: the header's length; then every partition's size. Cuts what an older, longer file
 * left past the end (the header task truncates already; this makes the length exact even if
 * something else wrote to the file in between, and reports the file's final length). */
static dagr_task_result_t truncate_task(const dagr_task_view_t *task) {
    unpacked_t u;
    if (!unpack_args(task, &u)) return DAGR_TASK_ERROR;
    int64_t total = 0;
    for (int i = 0; i < task->nbuf; i++) {
        int64_t n;
        memcpy(&n, task->buf[i], sizeof n);
        total += n;
    }
    dagr_task_result_t res = DAGR_TASK_ERROR;
    int fd = open_file(task, u.path, O_WRONLY);
    if (fd >= 0) {
        bool ok = true;
        if (ftruncate(fd, (off_t)total) != 0) {
            dagr_task_fail(task, DAGR_ERR_IO, "cannot set the length of '%s': %s", u.path,
                           strerror(errno));
            ok = false;
        }
        if (close_file(task, fd, u.path, ok)) res = DAGR_TASK_DONE;
    }
    unpacked_free(&u);
    return res;
}

static const dagr_kernel_t format_kernel = {"dtable_csv_format", format_task, NULL, {NULL}};
static const dagr_kernel_t header_kernel = {"dtable_csv_header", header_task, NULL, {NULL}};
static const dagr_kernel_t write_kernel = {"dtable_csv_write", write_task, NULL, {NULL}};
static const dagr_kernel_t truncate_kernel = {"dtable_csv_truncate", truncate_task, NULL, {NULL}};

static dagr_status_t one_file(dagr_dtable_t *t, const dt_args_t *a) {
    dagr_ctx_t *ctx = t->ctx;
    int np = t->nparts;
    dagr_data_t **text = calloc((size_t)np + 1, sizeof *text);
    dagr_data_t **size = calloc((size_t)np + 1, sizeof *size);
    dagr_access_t *acc = calloc((size_t)np + 2, sizeof *acc);
    dagr_data_t *hdr = NULL;
    dagr_status_t s = text && size && acc ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    for (int p = 0; s == DAGR_OK && p < np; p++) {
        s = dagr_data_create_dynamic(ctx, dt_part_rank(ctx, p), &text[p]);
        if (s == DAGR_OK)
            s = dagr_data_create(ctx, sizeof(int64_t), dt_part_rank(ctx, p), &size[p]);
    }
    if (s == DAGR_OK) s = dagr_data_create(ctx, sizeof(int64_t), 0, &hdr);
    dagr_task_opts_t o;
    dagr_task_opts_init(&o);
    for (int p = 0; s == DAGR_OK && p < np; p++) {
        dagr_access_t fa[3] = {
            {t->parts[p], DAGR_READ}, {text[p], DAGR_WRITE}, {size[p], DAGR_WRITE}};
        o.rank = dt_part_rank(ctx, p);
        s = dagr_spawn(ctx, &format_kernel, a->buf, a->n, 3, fa, &o);
    }
    /* The rest runs before any format task that is ready at the same time: a write frees
     * its text, so with the formats in partition order (partitions cyclic over the ranks) a
     * rank holds a few texts at a time, not all of its part of the file (350 MB a rank
     * for 10M rows at 2 ranks). */
    o.priority = 1;
    if (s == DAGR_OK) {
        dagr_access_t ha = {hdr, DAGR_WRITE};
        o.rank = 0;
        s = dagr_spawn(ctx, &header_kernel, a->buf, a->n, 1, &ha, &o);
    }
    for (int p = 0; s == DAGR_OK && p < np; p++) {
        acc[0] = (dagr_access_t){hdr, DAGR_READ};
        for (int q = 0; q < p; q++)
            acc[1 + q] = (dagr_access_t){size[q], DAGR_READ};
        acc[1 + p] = (dagr_access_t){text[p], DAGR_READ};
        o.rank = dt_part_rank(ctx, p);
        s = dagr_spawn(ctx, &write_kernel, a->buf, a->n, p + 2, acc, &o);
    }
    if (s == DAGR_OK) {
        acc[0] = (dagr_access_t){hdr, DAGR_READ};
        for (int q = 0; q < np; q++)
            acc[1 + q] = (dagr_access_t){size[q], DAGR_READ};
        o.rank = 0;
        s = dagr_spawn(ctx, &truncate_kernel, a->buf, a->n, np + 1, acc, &o);
    }
    /* The tasks inserted keep what they use: the handles can go now. */
    for (int p = 0; p < np; p++) {
        if (text) dagr_data_destroy(&text[p]);
        if (size) dagr_data_destroy(&size[p]);
    }
    dagr_data_destroy(&hdr);
    dt_free(text);
    dt_free(size);
    dt_free(acc);
    return s;
}

/* ---- one file per partition ---- */

/* The arguments, then int32 p. buf 0: the partition. */
static dagr_task_result_t part_file_task(const dagr_task_view_t *task) {
    pthread_once(&c_locale_once, c_locale_init);
    unpacked_t u;
    if (!unpack_args(task, &u)) return DAGR_TASK_ERROR;
    int32_t pi;
    memcpy(&pi, (const char *)task->args + task->args_size - sizeof pi, sizeof pi);
    char path[4096];
    dagr_task_result_t res = DAGR_TASK_ERROR;
    text_t t = {0};
    dt_part_t p;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* checked at the call: one %d */
    int len = snprintf(path, sizeof path, u.path, (int)pi);
#pragma GCC diagnostic pop
    if (len < 0 || (size_t)len >= sizeof path) {
        dagr_task_fail(task, DAGR_ERR_ARG, "the file name for partition %d is too long", pi);
        goto out;
    }
    if (!dt_task_view(task, 0, &p)) goto out;
    text_reserve(&t, rows_bound(&p, &u.o) + 4096); /* one allocation, most often */
    if (u.o.header) put_header(&t, u.ncols, u.names, &u.o);
    put_rows(&t, &p, &u.o);
    dt_part_free(&p);
    if (t.oom) {
        dt_task_fail_code(task, -ENOMEM, 0, NULL);
        goto out;
    }
    int fd = open_file(task, path, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd >= 0) {
        bool ok = write_at(task, fd, path, t.p, t.n, 0);
        if (close_file(task, fd, path, ok)) res = DAGR_TASK_DONE;
    }
out:
    dt_free(t.p);
    unpacked_free(&u);
    return res;
}
static const dagr_kernel_t part_file_kernel = {
    "dtable_csv_part_file", part_file_task, NULL, {NULL}};

/* Whether pattern has exactly one %d conversion (flags, width and precision allowed) and no
 * other conversion but %%. */
static bool pattern_ok(const char *pat) {
    int nd = 0;
    for (const char *c = pat; *c; c++) {
        if (*c != '%') continue;
        c++;
        if (*c == '%') continue;
        while (*c && strchr("-+ 0#", *c))
            c++;
        while (*c >= '0' && *c <= '9')
            c++;
        if (*c == '.') {
            c++;
            while (*c >= '0' && *c <= '9')
                c++;
        }
        if (*c != 'd') return false;
        nd++;
    }
    return nd == 1;
}

dagr_status_t dagr_dtable_write_csv(dagr_dtable_t *t, const char *path,
                                    const dagr_csv_write_opts_t *opts) {
    DAGR_TRY(dt_check(t, "write_csv: the table"));
    DAGR_CHECK(path && *path, DAGR_ERR_ARG, "write_csv: path is %s", path ? "empty" : "NULL");
    dagr_csv_write_opts_t o;
    dagr_csv_write_opts_init(&o);
    if (opts) o = *opts;
    if (!o.null_text) o.null_text = "";
    char d = o.delim;
    DAGR_CHECK(d && d != '"' && d != '\n' && d != '\r', DAGR_ERR_ARG,
               "write_csv: the delimiter (byte %d) cannot be NUL, a quote, CR or LF",
               (int)(unsigned char)d);
    DAGR_CHECK(!strchr(o.null_text, d) && !strpbrk(o.null_text, "\"\r\n"), DAGR_ERR_ARG,
               "write_csv: null_text '%s' holds the delimiter, a quote, CR or LF", o.null_text);
    DAGR_CHECK(!o.per_partition || pattern_ok(path), DAGR_ERR_ARG,
               "write_csv: with per_partition the path '%s' must hold exactly one %%d (the "
               "partition number, e.g. part-%%05d.csv) and no other %% conversion than %%%%",
               path);
    dt_args_t *a = calloc(1, sizeof *a);
    DAGR_CHECK(a, DAGR_ERR_NOMEM, "out of memory");
    dagr_status_t s = pack_args(a, t, path, &o);
    if (s == DAGR_OK && a->n + sizeof(int32_t) > DAGR_MAX_ARGS)
        s = DAGR_ERR(DAGR_ERR_ARG,
                     "write_csv: the path, null_text and column names take more than %d bytes",
                     DAGR_MAX_ARGS - 4);
    if (s == DAGR_OK && !o.per_partition) s = one_file(t, a);
    for (int p = 0; s == DAGR_OK && o.per_partition && p < t->nparts; p++) {
        size_t n0 = a->n;
        int32_t pi = p;
        dt_args_put(a, &pi, sizeof pi);
        dagr_access_t acc = {t->parts[p], DAGR_READ};
        dagr_task_opts_t to;
        dagr_task_opts_init(&to);
        to.rank = dt_part_rank(t->ctx, p);
        s = dagr_spawn(t->ctx, &part_file_kernel, a->buf, a->n, 1, &acc, &to);
        a->n = n0;
    }
    dt_free(a);
    return s;
}
