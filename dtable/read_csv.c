/* dagr_dtable_read_csv: CSV files into a table, every rank parsing its own byte ranges.
 *
 * At the call, rank 0 lists and measures the files and reads the first one's start (the
 * sample: names and, unless given, types) and broadcasts what it learnt, so that every rank
 * builds the same graph from the same facts. Then each file is cut into byte ranges,
 * proportionally to its size, and two tasks per range do the work (csv.h's algorithm):
 *   scan  reads its range and writes the range's dt_csv_scan_t (a few bytes) to a handle;
 *   parse reads every scan of its file, chains them (dt_csv_resolve) to learn where its first
 *         record starts and where the next range's first record starts, reads exactly those
 *         bytes, parses them and writes the partition.
 * No rank waits for another at the call beyond the broadcast, and the data never moves:
 * only the scans do. The scans also count LFs, so a parse error names the file's line. */
#include "dtable_impl.h"

#include "csv.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void dagr_csv_opts_init(dagr_csv_opts_t *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->delim = ',';
    o->quote = '"';
    o->header = true;
    o->sample_bytes = 1 << 20;
}

/* Reads n bytes at off of path into buf; 0, or -1 with errno. */
static int read_at(int fd, char *buf, size_t n, int64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = EIO; /* the file shrank under us */
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

/* ---- the tasks ---- */

/* Arguments of both tasks: the fixed part, then path and null markers as strings. */
typedef struct csv_targ {
    int64_t off, len;      /* the range */
    int64_t file_bytes;    /* the file's size at the call */
    uint64_t header_hash;  /* the header line's hash in the sample (0: no header) */
    int32_t k, nranges;    /* this range's index among the file's, and their count */
    int32_t ncols, nnulls; /* then ncols types (int32), path, nnulls markers, ncols names */
    char delim, quote, header;
} csv_targ_t;

static void opts_of(const csv_targ_t *a, const char **nulls, dt_csv_opts_t *o) {
    dt_csv_opts_init(o);
    o->delim = a->delim;
    o->quote = a->quote;
    o->header = a->header;
    o->nulls = nulls;
    o->nnulls = a->nnulls;
}

/* The scan of a range made of two consecutive pieces a then b (b not empty), from those of
 * the pieces: the range's record starts are a's, then one at b's start when a's last byte
 * ends a record, then b's, read from the state a ends in. */
static dt_csv_scan_t scan_compose(const dt_csv_scan_t *a, const dt_csv_scan_t *b) {
    dt_csv_scan_t r = {.len = a->len + b->len, .nlf = a->nlf + b->nlf};
    for (int s = 0; s < 2; s++) {
        int sb = a->end_in_quotes[s] ? 1 : 0;
        int64_t bf = b->first_start[sb] >= 0 ? a->len + b->first_start[sb] : -1;
        int64_t bl = b->last_start[sb] >= 0 ? a->len + b->last_start[sb] : -1;
        if (a->first_start[s] >= 0)
            r.first_start[s] = a->first_start[s];
        else if (a->ends_record[s])
            r.first_start[s] = a->len;
        else
            r.first_start[s] = bf;
        if (bl >= 0)
            r.last_start[s] = bl;
        else if (a->ends_record[s])
            r.last_start[s] = a->len;
        else
            r.last_start[s] = a->last_start[s];
        r.ends_record[s] = b->ends_record[sb];
        r.end_in_quotes[s] = b->end_in_quotes[sb];
    }
    return r;
}

/* Scans in pieces of this size through one reused buffer: a range is streamed, never held. */
#define SCAN_PIECE (4 << 20)

static dagr_task_result_t scan_task(const dagr_task_view_t *task) {
    dt_argr_t r;
    dt_argr_init(&r, task);
    csv_targ_t a;
    dt_argr_get(&r, &a, sizeof a);
    r.p += (size_t)a.ncols * sizeof(int32_t);
    const char *path = dt_argr_str(&r);
    dt_csv_opts_t o;
    opts_of(&a, NULL, &o);
    size_t piece = a.len < SCAN_PIECE ? (size_t)a.len : SCAN_PIECE;
    char *buf = dt_alloc(piece);
    if (!buf) return dt_task_fail_code(task, -ENOMEM, DAGR_OK, NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    dt_csv_scan_t acc;
    dt_csv_scan(buf, 0, &o, &acc);
    for (int64_t at = 0; fd >= 0 && at < a.len;) {
        size_t n = a.len - at < (int64_t)piece ? (size_t)(a.len - at) : piece;
        if (read_at(fd, buf, n, a.off + at) != 0) {
            close(fd);
            fd = -1;
            break;
        }
        dt_csv_scan_t s;
        dt_csv_scan(buf, n, &o, &s);
        acc = at == 0 ? s : scan_compose(&acc, &s);
        at += (int64_t)n;
    }
    dt_free(buf);
    if (fd < 0) {
        dagr_task_fail(task, DAGR_ERR_IO, "%s: cannot read bytes %lld-%lld: %s", path,
                       (long long)a.off, (long long)(a.off + a.len), strerror(errno));
        return DAGR_TASK_ERROR;
    }
    close(fd);
    memcpy(task->buf[0], &acc, sizeof acc);
    return DAGR_TASK_DONE;
}

/* FNV-1a over the header's field names, each with its terminator. */
static uint64_t names_hash(char **names, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int j = 0; j < n; j++)
        for (const char *p = names[j];; p++) {
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
            if (!*p) break;
        }
    return h | 1; /* never 0, which means no header */
}

static dagr_task_result_t parse_task(const dagr_task_view_t *task) {
    dt_argr_t r;
    dt_argr_init(&r, task);
    csv_targ_t a;
    dt_argr_get(&r, &a, sizeof a);
    int nc = a.ncols;
    dt_type_t *types = malloc((size_t)nc * sizeof *types);
    const char **nulls = malloc(((size_t)a.nnulls + 1) * sizeof *nulls);
    const char **names = malloc((size_t)nc * sizeof *names);
    dt_column_t *cols = calloc((size_t)nc, sizeof *cols);
    int64_t *first = malloc((size_t)a.nranges * 2 * sizeof *first);
    dt_csv_scan_t *scans = malloc((size_t)a.nranges * sizeof *scans);
    const char *buf = NULL;
    char *rbuf = NULL;
    int fd = -1;
    dagr_task_result_t res = DAGR_TASK_ERROR;
    if (!types || !nulls || !names || !cols || !first || !scans) {
        dt_task_fail_code(task, -ENOMEM, DAGR_OK, NULL);
        goto out;
    }
    for (int j = 0; j < nc; j++) {
        int32_t ty;
        dt_argr_get(&r, &ty, sizeof ty);
        types[j] = (dt_type_t)ty;
        cols[j].type = types[j]; /* an empty partition's columns keep their types too */
    }
    const char *path = dt_argr_str(&r);
    for (int i = 0; i < a.nnulls; i++)
        nulls[i] = dt_argr_str(&r);
    for (int j = 0; j < nc; j++)
        names[j] = dt_argr_str(&r);
    dt_csv_opts_t o;
    opts_of(&a, nulls, &o);

    /* Chain the file's scans: where this range's first record starts, and where the next
     * record after this range's last one starts (the first record of a later range). */
    int64_t *last = first + a.nranges, prev_lf = 0;
    for (int k = 0; k < a.nranges; k++) {
        memcpy(&scans[k], task->buf[k], sizeof scans[k]);
        if (k < a.k) prev_lf += scans[k].nlf;
    }
    /* Whether the file ends inside quotes does not matter here: the range where the
     * unterminated field starts reports it when it parses. */
    (void)dt_csv_resolve(scans, a.nranges, &o, first, last);
    int64_t begin = first[a.k];
    int64_t stop = a.file_bytes; /* absolute: where the bytes this range needs end */
    for (int64_t m = a.k, at = a.off; m < a.nranges; at += scans[m].len, m++)
        if (m > a.k && first[m] >= 0) {
            stop = at + first[m];
            break;
        }
    int out = task->nbuf - 1;
    if (begin < 0 && !(a.k == 0 && a.header)) { /* no record starts here: an empty partition */
        if (dt_task_write(task, out, nc, names, cols)) res = DAGR_TASK_DONE;
        goto out;
    }
    /* The bytes, read (not mapped: a mapped file that someone truncates meanwhile kills the
     * process with SIGBUS, where a read reports it). */
    size_t need = (size_t)(stop - a.off);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        rbuf = dt_alloc(need);
        if (!rbuf) {
            dt_task_fail_code(task, -ENOMEM, DAGR_OK, NULL);
            goto out;
        }
    }
    if (fd < 0 || read_at(fd, rbuf, need, a.off) != 0) {
        dagr_task_fail(task, DAGR_ERR_IO, "%s: cannot read bytes %lld-%lld: %s", path,
                       (long long)a.off, (long long)stop, strerror(errno));
        goto out;
    }
    buf = rbuf;
    /* The header, where the file's first range holds it: the same names as the sample's. */
    if (a.k == 0 && a.header) {
        int hn;
        char **hnames;
        size_t hend;
        char err[256];
        if (dt_csv_header(buf, need, stop == a.file_bytes, &o, &hn, &hnames, &hend, err,
                          sizeof err) != DT_CSV_OK) {
            dagr_task_fail(task, DAGR_ERR_FORMAT, "%s: header: %s", path, err);
            goto out;
        }
        uint64_t h = names_hash(hnames, hn);
        dt_csv_names_free(hnames, hn);
        if (h != a.header_hash) {
            dagr_task_fail(task, DAGR_ERR_FORMAT,
                           "%s: its header differs from the first file's (%d columns)", path, hn);
            goto out;
        }
    }
    if (begin < 0) { /* the header only */
        if (dt_task_write(task, out, nc, names, cols)) res = DAGR_TASK_DONE;
        goto out;
    }
    /* The line of the first record: the LFs of earlier ranges and of this one before it. */
    o.line_base = 1 + prev_lf;
    for (const char *p = buf, *e = buf + begin; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        o.line_base++;
    int64_t end_limit = a.len < (int64_t)need ? a.len : (int64_t)need;
    char err[384];
    int64_t nrows;
    int rc = dt_csv_parse(buf, need, (size_t)begin, (size_t)end_limit, a.off, &o, nc, types, names,
                          cols, &nrows, err, sizeof err);
    if (rc == DT_CSV_ENOMEM) {
        dt_task_fail_code(task, -ENOMEM, DAGR_OK, NULL);
        goto out;
    }
    if (rc != DT_CSV_OK) {
        dagr_task_fail(task, DAGR_ERR_FORMAT, "%s: %s", path, err);
        goto out;
    }
    /* The columns own their bytes: the file's go before the partition is made, so that the
     * two are never in memory at once (a table's ingest keeps less free heap behind). */
    dt_free(rbuf);
    rbuf = NULL;
    if (dt_task_write(task, out, nc, names, cols)) res = DAGR_TASK_DONE;
    for (int j = 0; j < nc; j++)
        dt_column_free(&cols[j]);
out:
    dt_free(rbuf);
    if (fd >= 0) close(fd);
    dt_free(types);
    dt_free(nulls);
    dt_free(names);
    dt_free(cols);
    dt_free(first);
    dt_free(scans);
    return res;
}

static const dagr_kernel_t scan_kernel = {"dtable_csv_scan", scan_task, NULL, {NULL}};
static const dagr_kernel_t parse_kernel = {"dtable_csv_parse", parse_task, NULL, {NULL}};

/* ---- the call ---- */

#define PART_BYTES ((int64_t)32 << 20)

/* What rank 0 learns and broadcasts: the files' sizes and the schema. */
typedef struct csv_plan {
    int nfiles;
    int64_t *sizes;
    int ncols;
    dt_type_t *types;
    char **names;
    uint64_t header_hash;
} csv_plan_t;

static void plan_free(csv_plan_t *p) {
    dt_free(p->sizes);
    dt_free(p->types);
    dt_csv_names_free(p->names, p->ncols);
    memset(p, 0, sizeof *p);
}

/* Rank 0: sizes, sample, schema. */
static dagr_status_t plan_make(const char *const *paths, int nfiles, const dagr_csv_opts_t *uo,
                               const dt_csv_opts_t *o, csv_plan_t *p) {
    p->nfiles = nfiles;
    p->sizes = calloc((size_t)nfiles, sizeof *p->sizes);
    if (!p->sizes) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    int sample_file = -1;
    for (int f = 0; f < nfiles; f++) {
        struct stat st;
        if (stat(paths[f], &st) != 0)
            return DAGR_ERR(DAGR_ERR_IO, "read_csv: %s: %s", paths[f], strerror(errno));
        DAGR_CHECK(S_ISREG(st.st_mode), DAGR_ERR_IO, "read_csv: %s is not a regular file",
                   paths[f]);
        p->sizes[f] = (int64_t)st.st_size;
        if (sample_file < 0 && st.st_size > 0) sample_file = f;
    }
    if (sample_file < 0) {
        /* Every file is empty: only a given schema says what the (empty) table holds. */
        DAGR_CHECK(uo->ncols > 0, DAGR_ERR_FORMAT,
                   "read_csv: %s is empty: give the columns (opts.ncols, opts.types) to read "
                   "empty files",
                   paths[0]);
    } else {
        const char *path = paths[sample_file];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return DAGR_ERR(DAGR_ERR_IO, "read_csv: %s: %s", path, strerror(errno));
        int64_t want = uo->sample_bytes;
        char err[384];
        for (;;) {
            int64_t n = want < p->sizes[sample_file] ? want : p->sizes[sample_file];
            bool at_eof = n == p->sizes[sample_file];
            char *buf = dt_alloc((size_t)n);
            if (!buf) {
                close(fd);
                return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory for the sample");
            }
            if (read_at(fd, buf, (size_t)n, 0) != 0) {
                dt_free(buf);
                close(fd);
                return DAGR_ERR(DAGR_ERR_IO, "read_csv: %s: %s", path, strerror(errno));
            }
            int nc = 0, rc;
            char **names = NULL;
            dt_type_t *types = NULL;
            size_t hend;
            if (uo->ncols > 0)
                rc = dt_csv_header(buf, (size_t)n, at_eof, o, &nc, &names, &hend, err, sizeof err);
            else
                rc = dt_csv_infer(buf, (size_t)n, at_eof, o, &nc, &types, &names, err, sizeof err);
            dt_free(buf);
            if (rc == DT_CSV_EMORE && !at_eof) { /* a first record longer than the sample */
                want *= 2;
                continue;
            }
            if (rc != DT_CSV_OK) {
                close(fd);
                if (rc == DT_CSV_ENOMEM) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
                return DAGR_ERR(DAGR_ERR_FORMAT, "read_csv: %s: %s", path, err);
            }
            p->header_hash = o->header ? names_hash(names, nc) : 0;
            p->ncols = nc;
            p->names = names;
            p->types = types;
            break;
        }
        close(fd);
        if (uo->ncols > 0 && p->ncols != uo->ncols) {
            return DAGR_ERR(DAGR_ERR_FORMAT,
                            "read_csv: %s has %d columns but the options give %d types", path,
                            p->ncols, uo->ncols);
        }
    }
    if (uo->ncols > 0) {
        if (!p->names) { /* every file empty */
            p->ncols = uo->ncols;
            p->names = calloc((size_t)uo->ncols, sizeof *p->names);
            if (!p->names) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            for (int j = 0; j < uo->ncols; j++) {
                char nm[24];
                snprintf(nm, sizeof nm, "c%d", j);
                p->names[j] = strdup(nm);
                if (!p->names[j]) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            }
        }
        dt_free(p->types);
        p->types = malloc((size_t)uo->ncols * sizeof *p->types);
        if (!p->types) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
        for (int j = 0; j < uo->ncols; j++)
            p->types[j] = (dt_type_t)uo->types[j];
    }
    if (uo->names) {
        for (int j = 0; j < p->ncols; j++) {
            char *s = strdup(uo->names[j]);
            if (!s) return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
            dt_free(p->names[j]);
            p->names[j] = s;
        }
    }
    return DAGR_OK;
}

/* Rank 0's plan (or its error) to every rank. */
static dagr_status_t plan_bcast(dagr_ctx_t *ctx, dagr_status_t s0, csv_plan_t *p) {
    MPI_Comm comm = ctx_comm(ctx);
    int rank = dagr_rank(ctx);
    char msg[DAGR_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", s0 == DAGR_OK ? "" : dagr_last_error());
    int st = s0;
    MPI_Bcast(&st, 1, MPI_INT, 0, comm);
    if (st != DAGR_OK) {
        MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, comm);
        if (rank != 0) dagr_error_set_raw(msg);
        return (dagr_status_t)st;
    }
    /* Packed: nfiles, ncols, header_hash, sizes, types, then the names with terminators. */
    size_t nb = 0;
    if (rank == 0)
        for (int j = 0; j < p->ncols; j++)
            nb += strlen(p->names[j]) + 1;
    int64_t head[4] = {p->nfiles, p->ncols, (int64_t)p->header_hash, (int64_t)nb};
    MPI_Bcast(head, 4, MPI_INT64_T, 0, comm);
    size_t total = (size_t)head[0] * 8 + (size_t)head[1] * 4 + (size_t)head[3];
    char *buf = malloc(total ? total : 1);
    int ok = buf != NULL, all_ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok) {
        dt_free(buf);
        return DAGR_ERR(DAGR_ERR_NOMEM, "read_csv: out of memory for the plan");
    }
    if (rank == 0) {
        char *q = buf;
        memcpy(q, p->sizes, (size_t)p->nfiles * 8);
        q += (size_t)p->nfiles * 8;
        for (int j = 0; j < p->ncols; j++, q += 4) {
            int32_t t = p->types[j];
            memcpy(q, &t, 4);
        }
        for (int j = 0; j < p->ncols; j++) {
            size_t l = strlen(p->names[j]) + 1;
            memcpy(q, p->names[j], l);
            q += l;
        }
    }
    MPI_Bcast(buf, (int)total, MPI_BYTE, 0, comm); /* a schema of < 2 GiB */
    if (rank != 0) {
        p->nfiles = (int)head[0];
        p->ncols = (int)head[1];
        p->header_hash = (uint64_t)head[2];
        p->sizes = malloc((size_t)p->nfiles * 8 + 8);
        p->types = malloc((size_t)p->ncols * sizeof *p->types + 1);
        p->names = calloc((size_t)p->ncols + 1, sizeof *p->names);
        ok = p->sizes && p->types && p->names;
        const char *q = buf + (size_t)p->nfiles * 8 + (size_t)p->ncols * 4;
        for (int j = 0; ok && j < p->ncols; j++) {
            p->names[j] = strdup(q);
            ok = p->names[j] != NULL;
            q += strlen(q) + 1;
        }
        if (ok) {
            memcpy(p->sizes, buf, (size_t)p->nfiles * 8);
            for (int j = 0; j < p->ncols; j++) {
                int32_t t;
                memcpy(&t, buf + (size_t)p->nfiles * 8 + (size_t)j * 4, 4);
                p->types[j] = (dt_type_t)t;
            }
        }
    }
    dt_free(buf);
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (!all_ok) return DAGR_ERR(DAGR_ERR_NOMEM, "read_csv: out of memory for the plan");
    return DAGR_OK;
}

static dagr_status_t check_opts(const dagr_csv_opts_t *o) {
    DAGR_CHECK(o->delim && o->delim != '\n' && o->delim != '\r' && o->delim != o->quote,
               DAGR_ERR_ARG,
               "read_csv: the delimiter must be a byte other than CR, LF, NUL and the quote");
    DAGR_CHECK(o->quote && o->quote != '\n' && o->quote != '\r', DAGR_ERR_ARG,
               "read_csv: the quote must be a byte other than CR, LF and NUL");
    DAGR_CHECK(o->nnulls >= 0 && (o->nnulls == 0 || o->nulls), DAGR_ERR_ARG,
               "read_csv: nnulls is %d with nulls %s", o->nnulls, o->nulls ? "set" : "NULL");
    for (int i = 0; i < o->nnulls; i++)
        DAGR_CHECK(o->nulls[i], DAGR_ERR_ARG, "read_csv: null marker %d is NULL", i);
    DAGR_CHECK(o->ncols >= 0 && (o->ncols == 0 || o->types), DAGR_ERR_ARG,
               "read_csv: ncols is %d with types %s", o->ncols, o->types ? "set" : "NULL");
    DAGR_CHECK(!o->names || o->ncols > 0, DAGR_ERR_ARG,
               "read_csv: names are given without types (set ncols and types)");
    for (int j = 0; j < o->ncols; j++) {
        DAGR_CHECK((unsigned)o->types[j] <= DAGR_COL_TIMESTAMP, DAGR_ERR_ARG,
                   "read_csv: column %d has an unknown type %d", j, (int)o->types[j]);
        if (o->names) {
            DAGR_CHECK(o->names[j] && o->names[j][0], DAGR_ERR_ARG,
                       "read_csv: name %d is NULL or empty", j);
            for (int k = 0; k < j; k++)
                DAGR_CHECK(strcmp(o->names[j], o->names[k]) != 0, DAGR_ERR_ARG,
                           "read_csv: column name '%s' is given twice", o->names[j]);
        }
    }
    DAGR_CHECK(o->sample_bytes > 0, DAGR_ERR_ARG, "read_csv: sample_bytes is %lld",
               (long long)o->sample_bytes);
    DAGR_CHECK(o->partitions >= 0, DAGR_ERR_ARG, "read_csv: partitions is %d", o->partitions);
    return DAGR_OK;
}

/* Inserts the scan and parse tasks of one file's nr ranges, partitions p0.. of t. */
static dagr_status_t insert_file(dagr_dtable_t *t, const char *path, int64_t size, int nr, int p0,
                                 const csv_plan_t *plan, const dagr_csv_opts_t *uo) {
    dagr_ctx_t *ctx = t->ctx;
    dagr_data_t **scans = calloc((size_t)nr, sizeof *scans);
    dagr_access_t *acc = calloc((size_t)nr + 1, sizeof *acc);
    dagr_status_t s = DAGR_OK;
    if (!scans || !acc) {
        s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int k = 0; k < nr && s == DAGR_OK; k++)
        s = dagr_data_create(ctx, sizeof(dt_csv_scan_t), dt_part_rank(ctx, p0 + k), &scans[k]);
    for (int pass = 0; pass < 2 && s == DAGR_OK; pass++) {
        for (int k = 0; k < nr && s == DAGR_OK; k++) {
            int64_t off = size * k / nr, end = size * (k + 1) / nr;
            csv_targ_t a = {.off = off,
                            .len = end - off,
                            .file_bytes = size,
                            .header_hash = plan->header_hash,
                            .k = k,
                            .nranges = nr,
                            .ncols = plan->ncols,
                            .nnulls = uo->nnulls,
                            .delim = uo->delim,
                            .quote = uo->quote,
                            .header = uo->header};
            dt_args_t *args = malloc(sizeof *args);
            if (!args) {
                s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
                break;
            }
            args->n = 0;
            args->overflow = false;
            dt_args_put(args, &a, sizeof a);
            for (int j = 0; j < plan->ncols; j++) {
                int32_t ty = plan->types[j];
                dt_args_put(args, &ty, sizeof ty);
            }
            dt_args_str(args, path);
            for (int i = 0; i < uo->nnulls; i++)
                dt_args_str(args, uo->nulls[i]);
            for (int j = 0; j < plan->ncols; j++)
                dt_args_str(args, plan->names[j]);
            if (args->overflow) {
                dt_free(args);
                s = DAGR_ERR(DAGR_ERR_ARG,
                             "read_csv: the path, null markers and column names take more than "
                             "%d bytes",
                             DAGR_MAX_ARGS - (int)sizeof a);
                break;
            }
            dagr_task_opts_t to;
            dagr_task_opts_init(&to);
            to.rank = dt_part_rank(ctx, p0 + k);
            if (pass == 0) {
                acc[0] = (dagr_access_t){scans[k], DAGR_WRITE};
                s = dagr_spawn(ctx, &scan_kernel, args->buf, args->n, 1, acc, &to);
            } else {
                for (int m = 0; m < nr; m++)
                    acc[m] = (dagr_access_t){scans[m], DAGR_READ};
                acc[nr] = (dagr_access_t){t->parts[p0 + k], DAGR_WRITE};
                s = dagr_spawn(ctx, &parse_kernel, args->buf, args->n, nr + 1, acc, &to);
            }
            dt_free(args);
        }
    }
out:
    for (int k = 0; scans && k < nr; k++)
        dagr_data_destroy(&scans[k]);
    dt_free(scans);
    dt_free(acc);
    return s;
}

dagr_status_t dagr_dtable_read_csv_files(dagr_ctx_t *ctx, const char *const *paths, int nfiles,
                                         const dagr_csv_opts_t *opts, dagr_dtable_t **out) {
    DAGR_CHECK(ctx && out, DAGR_ERR_ARG, "read_csv: ctx or out is NULL");
    *out = NULL;
    DAGR_TRY(ctx_usable(ctx));
    dagr_csv_opts_t uo;
    if (opts)
        uo = *opts;
    else
        dagr_csv_opts_init(&uo);
    dagr_status_t s = DAGR_OK;
    if (!paths || nfiles < 1)
        s = DAGR_ERR(DAGR_ERR_ARG, "read_csv: no file given (nfiles = %d)", nfiles);
    for (int f = 0; s == DAGR_OK && f < nfiles; f++)
        if (!paths[f]) s = DAGR_ERR(DAGR_ERR_ARG, "read_csv: path %d is NULL", f);
    if (s == DAGR_OK) s = check_opts(&uo);
    DAGR_TRY(dt_agree(ctx, s));

    dt_csv_opts_t o;
    dt_csv_opts_init(&o);
    o.delim = uo.delim;
    o.quote = uo.quote;
    o.header = uo.header;
    o.nulls = uo.nulls;
    o.nnulls = uo.nnulls;
    csv_plan_t plan = {0};
    dagr_status_t s0 = DAGR_OK;
    if (dagr_rank(ctx) == 0) s0 = plan_make(paths, nfiles, &uo, &o, &plan);
    s = plan_bcast(ctx, s0, &plan);
    if (s != DAGR_OK) {
        plan_free(&plan);
        return s;
    }
    /* Ranges per file, in proportion to its bytes (at least one for a file with any). */
    int64_t total = 0;
    for (int f = 0; f < nfiles; f++)
        total += plan.sizes[f];
    /* By default a partition per worker, and more for big files: ranges of at most
     * PART_BYTES keep each task's buffers small enough for malloc to reuse them rather than
     * map fresh pages for every one (page faults were a third of the time of a 700 MB read),
     * and give the scheduler pieces to balance. A multiple of the rank count. */
    int want = uo.partitions;
    if (want <= 0) {
        int64_t size = dagr_size(ctx), k = (total + PART_BYTES - 1) / PART_BYTES;
        k = (k + size - 1) / size * size;
        want = dt_default_parts(ctx);
        if (k > want) want = k > INT_MAX / 2 ? INT_MAX / 2 : (int)k;
    }
    int *nr = calloc((size_t)nfiles, sizeof *nr), nparts = 0;
    if (!nr) {
        plan_free(&plan);
        return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    }
    for (int f = 0; f < nfiles; f++) {
        if (plan.sizes[f] == 0) continue;
        int64_t k = (int64_t)((double)want * (double)plan.sizes[f] / (double)total + 0.5);
        if (k > plan.sizes[f]) k = plan.sizes[f];
        nr[f] = k < 1 ? 1 : (int)k;
        nparts += nr[f];
    }
    dagr_dtable_t *t = NULL;
    s = dt_table_new(ctx, plan.ncols, (const char *const *)plan.names, plan.types,
                     nparts > 0 ? nparts : 1, &t);
    if (s == DAGR_OK && nparts == 0) {
        /* Nothing to read: one empty partition, written by a parse of nothing. */
        s = dt_write_empty(t, 0);
    }
    for (int f = 0, p0 = 0; s == DAGR_OK && f < nfiles; p0 += nr[f], f++)
        if (nr[f] > 0) s = insert_file(t, paths[f], plan.sizes[f], nr[f], p0, &plan, &uo);
    dt_free(nr);
    plan_free(&plan);
    if (s != DAGR_OK) {
        dagr_dtable_destroy(&t);
        return s;
    }
    *out = t;
    return DAGR_OK;
}

dagr_status_t dagr_dtable_read_csv(dagr_ctx_t *ctx, const char *path, const dagr_csv_opts_t *opts,
                                   dagr_dtable_t **out) {
    DAGR_CHECK(ctx && out && path, DAGR_ERR_ARG, "read_csv: ctx, path or out is NULL");
    *out = NULL;
    if (!strpbrk(path, "*?[")) return dagr_dtable_read_csv_files(ctx, &path, 1, opts, out);
    /* A glob: rank 0 expands it (in name order) and broadcasts the names' count; every rank
     * expands it too, and the counts must agree (a file system that differs between ranks
     * would give different graphs). */
    glob_t g;
    int rc = glob(path, 0, NULL, &g);
    dagr_status_t s = DAGR_OK;
    if (rc == GLOB_NOMATCH)
        s = DAGR_ERR(DAGR_ERR_ARG, "read_csv: no file matches '%s'", path);
    else if (rc != 0)
        s = DAGR_ERR(DAGR_ERR_IO, "read_csv: cannot expand '%s'", path);
    int64_t mine = rc == 0 ? (int64_t)g.gl_pathc : -1, lo, hi;
    MPI_Allreduce(&mine, &lo, 1, MPI_INT64_T, MPI_MIN, ctx_comm(ctx));
    MPI_Allreduce(&mine, &hi, 1, MPI_INT64_T, MPI_MAX, ctx_comm(ctx));
    if (s == DAGR_OK && lo != hi)
        s = DAGR_ERR(DAGR_ERR_IO, "read_csv: '%s' matches different files on different ranks",
                     path);
    if (s == DAGR_OK)
        s = dagr_dtable_read_csv_files(ctx, (const char *const *)g.gl_pathv, (int)g.gl_pathc, opts,
                                       out);
    else
        s = dt_agree(ctx, s);
    if (rc == 0) globfree(&g);
    return s;
}
