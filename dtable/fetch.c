/* Row counts, fetching rows to one rank or all, and printing (dagr_dtable_nrows, _fetch,
 * _print and the dagr_rows_t accessors).
 *
 * A fetch is two waits: tasks on each partition's rank count its rows into a local array
 * (the task runs on this rank, so its argument may point at this call's memory), the ranks
 * add the arrays up; then tasks copy out the first rows each partition contributes, and one
 * gather brings the copies to the root, which concatenates them in partition order. */
#include "dtable_impl.h"

#include "expr.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct dagr_rows {
    int ncols;
    int64_t n;
    char **names;
    dt_type_t *types;
    dt_column_t *cols;
};

/* ---- counting ---- */

/* Args: where to put the count, and whether to count bytes instead of rows. */
typedef struct count_arg {
    int64_t *slot;
    int bytes;
} count_arg_t;

static dagr_task_result_t count_task(const dagr_task_view_t *task) {
    count_arg_t a;
    memcpy(&a, task->args, sizeof a);
    int64_t n = dt_part_nrows(task->buf[0], task->bytes[0]);
    if (n < 0) {
        dagr_task_fail(task, DAGR_ERR_FORMAT, "a partition is not a table partition");
        return DAGR_TASK_ERROR;
    }
    *a.slot = a.bytes ? (int64_t)task->bytes[0] : n;
    return DAGR_TASK_DONE;
}
static const dagr_kernel_t count_kernel = {"dtable_count", count_task, NULL, {NULL}};

/* Collective: cnt[p] = partition p's rows (or bytes), on every rank. */
static dagr_status_t count_parts_as(dagr_dtable_t *t, int64_t *cnt, int bytes) {
    dagr_status_t s = DAGR_OK;
    memset(cnt, 0, (size_t)t->nparts * sizeof *cnt);
    for (int p = 0; p < t->nparts && s == DAGR_OK; p++) {
        count_arg_t a = {&cnt[p], bytes};
        dagr_access_t acc = {t->parts[p], DAGR_READ};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(t->ctx, p);
        s = dagr_spawn(t->ctx, &count_kernel, &a, sizeof a, 1, &acc, &o);
    }
    dagr_status_t w = dagr_wait_all(t->ctx);
    if (s == DAGR_OK) s = w;
    DAGR_TRY(dt_agree(t->ctx, s));
    int e = MPI_Allreduce(MPI_IN_PLACE, cnt, t->nparts, MPI_INT64_T, MPI_SUM, ctx_comm(t->ctx));
    DAGR_CHECK(e == MPI_SUCCESS, DAGR_ERR_MPI, "MPI_Allreduce of the row counts failed");
    int64_t total = 0;
    for (int p = 0; p < t->nparts; p++)
        total += cnt[p];
    if (!bytes) t->known_rows = total;
    return DAGR_OK;
}
dagr_status_t dt_count_parts(dagr_dtable_t *t, int64_t *cnt) {
    return count_parts_as(t, cnt, 0);
}

/* nrows and nbytes: the sum of the partitions' counts. */
static dagr_status_t total(dagr_dtable_t *t, int64_t *out, int bytes, const char *what) {
    DAGR_TRY(dt_check(t, what));
    int64_t *cnt = malloc((size_t)t->nparts * sizeof *cnt);
    dagr_status_t s = cnt ? DAGR_OK : DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    s = dt_agree(t->ctx,
                 s == DAGR_OK && !out ? DAGR_ERR(DAGR_ERR_ARG, "%s: out is NULL", what) : s);
    if (s == DAGR_OK) s = count_parts_as(t, cnt, bytes);
    if (s == DAGR_OK) {
        *out = 0;
        for (int p = 0; p < t->nparts; p++)
            *out += cnt[p];
    }
    dt_free(cnt);
    return s;
}

dagr_status_t dagr_dtable_nrows(dagr_dtable_t *t, int64_t *out) {
    return total(t, out, 0, "nrows");
}

dagr_status_t dagr_dtable_nbytes(dagr_dtable_t *t, int64_t *out) {
    return total(t, out, 1, "nbytes");
}

/* ---- copying out ---- */

typedef struct copy_arg {
    int64_t take; /* rows wanted, from the first */
    void **buf;   /* the copy, malloc'ed by the task */
    size_t *bytes;
} copy_arg_t;

static dagr_task_result_t copy_task(const dagr_task_view_t *task) {
    copy_arg_t a;
    memcpy(&a, task->args, sizeof a);
    dt_part_t p;
    if (!dt_task_view(task, 0, &p)) return DAGR_TASK_ERROR;
    dagr_task_result_t res = DAGR_TASK_DONE;
    if (a.take >= p.nrows) { /* the whole partition, as it is */
        *a.buf = malloc(task->bytes[0] ? task->bytes[0] : 1);
        if (!*a.buf)
            res = dt_task_fail_code(task, -ENOMEM, 0, NULL);
        else {
            memcpy(*a.buf, task->buf[0], task->bytes[0]);
            *a.bytes = task->bytes[0];
        }
        dt_part_free(&p);
        return res;
    }
    /* The first rows, gathered straight into the copy. */
    bool *nulls = malloc(((size_t)p.ncols + 1) * sizeof *nulls);
    size_t *sbytes = malloc(((size_t)p.ncols + 1) * sizeof *sbytes);
    int rc = nulls && sbytes ? 0 : -ENOMEM;
    if (rc == 0) {
        size_t n = dt_part_size_rows(p.ncols, p.names, p.cols, NULL, a.take, nulls, sbytes);
        *a.buf = aligned_alloc(64, (n + 63) & ~(size_t)63);
        if (*a.buf) {
            dt_part_write_rows(*a.buf, p.ncols, p.names, p.cols, NULL, a.take, nulls, sbytes);
            *a.bytes = n;
        } else
            rc = -ENOMEM;
    }
    if (rc) res = dt_task_fail_code(task, rc, DAGR_ERR_INTERNAL, "taking rows failed");
    dt_free(nulls);
    dt_free(sbytes);
    dt_part_free(&p);
    return res;
}
static const dagr_kernel_t copy_kernel = {"dtable_fetch_copy", copy_task, NULL, {NULL}};

static void rows_free(dagr_rows_t *r) {
    if (!r) return;
    for (int j = 0; j < r->ncols; j++) {
        if (r->names) dt_free(r->names[j]);
        if (r->cols) dt_column_free(&r->cols[j]);
    }
    dt_free(r->names);
    dt_free(r->types);
    dt_free(r->cols);
    dt_free(r);
}

/* The root's side: the gathered partitions (buf, each [int32 p, pad, int64 bytes, bytes
 * padded to 8]) into rows of t's schema. */
static dagr_status_t assemble(const dagr_dtable_t *t, const char *buf, size_t len,
                              dagr_rows_t **out) {
    dagr_rows_t *r = calloc(1, sizeof *r);
    DAGR_CHECK(r, DAGR_ERR_NOMEM, "out of memory");
    r->ncols = t->ncols;
    r->names = calloc((size_t)t->ncols + 1, sizeof *r->names);
    r->types = calloc((size_t)t->ncols + 1, sizeof *r->types);
    r->cols = calloc((size_t)t->ncols + 1, sizeof *r->cols);
    const char **pbuf = calloc((size_t)t->nparts + 1, sizeof *pbuf);
    size_t *pbytes = calloc((size_t)t->nparts + 1, sizeof *pbytes);
    dt_part_t *parts = calloc((size_t)t->nparts + 1, sizeof *parts);
    const dt_column_t **src = calloc((size_t)t->nparts + 1, sizeof *src);
    dagr_status_t s = DAGR_OK;
    if (!r->names || !r->types || !r->cols || !pbuf || !pbytes || !parts || !src)
        s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    for (int j = 0; s == DAGR_OK && j < t->ncols; j++) {
        r->types[j] = t->types[j];
        r->names[j] = strdup(t->names[j]);
        if (!r->names[j]) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    }
    for (size_t at = 0; s == DAGR_OK && at < len;) {
        int32_t p;
        int64_t b;
        memcpy(&p, buf + at, 4);
        memcpy(&b, buf + at + 8, 8);
        pbuf[p] = buf + at + 16;
        pbytes[p] = (size_t)b;
        at += 16 + (((size_t)b + 7) & ~(size_t)7);
    }
    int np = 0;
    for (int p = 0; s == DAGR_OK && p < t->nparts; p++) {
        if (!pbuf[p]) continue;
        char err[160];
        int rc = dt_part_view(pbuf[p], pbytes[p], &parts[np], err, sizeof err);
        if (rc) {
            s = rc == -2 ? DAGR_ERR(DAGR_ERR_NOMEM, "out of memory")
                         : DAGR_ERR(DAGR_ERR_FORMAT, "fetch: partition %d: %s", p, err);
            break;
        }
        if (parts[np].ncols != t->ncols && parts[np].nrows > 0) {
            s = DAGR_ERR(DAGR_ERR_FORMAT, "fetch: partition %d has %d columns, the table %d", p,
                         parts[np].ncols, t->ncols);
            dt_part_free(&parts[np]);
            break;
        }
        if (parts[np].nrows == 0 || parts[np].ncols != t->ncols)
            dt_part_free(&parts[np]);
        else
            np++;
    }
    for (int j = 0; s == DAGR_OK && j < t->ncols; j++) {
        for (int k = 0; k < np; k++)
            src[k] = &parts[k].cols[j];
        int rc = dt_column_concat(src, np, t->types[j], &r->cols[j]);
        if (rc)
            s = DAGR_ERR(rc == -ENOMEM ? DAGR_ERR_NOMEM : DAGR_ERR_FORMAT,
                         "fetch: column '%s' does not have the table's type %s", t->names[j],
                         dt_type_name(t->types[j]));
        else
            r->n = r->cols[j].n;
    }
    for (int k = 0; parts && k < np; k++)
        dt_part_free(&parts[k]);
    dt_free(parts);
    dt_free(src);
    dt_free(pbuf);
    dt_free(pbytes);
    if (s != DAGR_OK) {
        rows_free(r);
        return s;
    }
    *out = r;
    return DAGR_OK;
}

dagr_status_t dagr_dtable_fetch(dagr_dtable_t *t, int64_t k, int root, dagr_rows_t **out) {
    DAGR_TRY(dt_check(t, "fetch: the table"));
    dagr_ctx_t *ctx = t->ctx;
    int rank = dagr_rank(ctx), size = dagr_size(ctx);
    dagr_status_t s = DAGR_OK;
    if (!out)
        s = DAGR_ERR(DAGR_ERR_ARG, "fetch: out is NULL");
    else if (root < -1 || root >= size)
        s = DAGR_ERR(DAGR_ERR_ARG, "fetch: root %d is not a rank (size %d) nor -1", root, size);
    if (out) *out = NULL;
    int np = t->nparts;
    int64_t *cnt = malloc((size_t)np * sizeof *cnt);
    void **bufs = calloc((size_t)np, sizeof *bufs);
    size_t *bytes = calloc((size_t)np, sizeof *bytes);
    if (s == DAGR_OK && (!cnt || !bufs || !bytes)) s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    s = dt_agree(ctx, s);
    if (s == DAGR_OK) s = dt_count_parts(t, cnt);
    /* What each partition gives: its rows up to k in all. */
    int64_t left = k < 0 ? INT64_MAX : k;
    for (int p = 0; s == DAGR_OK && p < np; p++) {
        int64_t take = cnt[p] < left ? cnt[p] : left;
        left -= take;
        if (take == 0) continue;
        copy_arg_t a = {.take = take, .buf = &bufs[p], .bytes = &bytes[p]};
        dagr_access_t acc = {t->parts[p], DAGR_READ};
        dagr_task_opts_t o;
        dagr_task_opts_init(&o);
        o.rank = dt_part_rank(ctx, p);
        s = dagr_spawn(ctx, &copy_kernel, &a, sizeof a, 1, &acc, &o);
    }
    if (cnt && t->known_rows >= 0) { /* count_parts ran, on every rank */
        dagr_status_t w = dagr_wait_all(ctx);
        if (s == DAGR_OK) s = w;
    }
    /* Pack this rank's copies, gather them at the root (or everywhere). */
    size_t mine = 0;
    for (int p = 0; p < np; p++)
        if (bufs[p]) mine += 16 + ((bytes[p] + 7) & ~(size_t)7);
    char *pack = NULL;
    if (s == DAGR_OK) {
        pack = malloc(mine ? mine : 1);
        if (!pack)
            s = DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
        else if (mine > INT_MAX)
            s = DAGR_ERR(DAGR_ERR_UNSUPPORTED, "fetch: %zu bytes from one rank (2 GiB at most)",
                         mine);
    }
    s = dt_agree(ctx, s);
    size_t at = 0;
    for (int p = 0; s == DAGR_OK && p < np; p++) {
        if (!bufs[p]) continue;
        int32_t pi = p;
        int64_t b = (int64_t)bytes[p];
        memset(pack + at, 0, 16);
        memcpy(pack + at, &pi, 4);
        memcpy(pack + at + 8, &b, 8);
        memcpy(pack + at + 16, bufs[p], bytes[p]);
        at += 16 + ((bytes[p] + 7) & ~(size_t)7);
    }
    for (int p = 0; p < np; p++)
        dt_free(bufs[p]);
    dt_free(bufs);
    dt_free(bytes);
    dt_free(cnt);
    if (s != DAGR_OK) {
        dt_free(pack);
        return s;
    }
    int len = (int)mine, *lens = NULL, *displs = NULL;
    char *all = NULL;
    bool receiver = root < 0 || rank == root;
    if (receiver) {
        lens = malloc((size_t)size * sizeof *lens);
        displs = malloc((size_t)size * sizeof *displs);
    }
    MPI_Comm comm = ctx_comm(ctx);
    if (root < 0)
        MPI_Allgather(&len, 1, MPI_INT, lens, 1, MPI_INT, comm);
    else
        MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, root, comm);
    int64_t total = 0;
    if (receiver) {
        for (int r = 0; r < size; r++) {
            displs[r] = (int)total;
            total += lens[r];
        }
        if (total <= INT_MAX) all = malloc(total ? (size_t)total : 1);
    }
    /* Every rank must take part in the gather: a root that cannot receive gets nothing
     * (counts of 0) and reports it after. */
    int ok = !receiver || all != NULL, all_ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
    if (all_ok) {
        if (root < 0)
            MPI_Allgatherv(pack, len, MPI_BYTE, all, lens, displs, MPI_BYTE, comm);
        else
            MPI_Gatherv(pack, len, MPI_BYTE, all, lens, displs, MPI_BYTE, root, comm);
        if (receiver) s = assemble(t, all, (size_t)total, out);
    } else {
        s = DAGR_ERR(total > INT_MAX ? DAGR_ERR_UNSUPPORTED : DAGR_ERR_NOMEM,
                     "fetch: %lld bytes to gather on one rank (2 GiB at most)", (long long)total);
    }
    dt_free(pack);
    dt_free(all);
    dt_free(lens);
    dt_free(displs);
    return dt_agree(ctx, s);
}

/* ---- accessors ---- */

int64_t dagr_rows_count(const dagr_rows_t *r) {
    return r ? r->n : 0;
}
int dagr_rows_ncols(const dagr_rows_t *r) {
    return r ? r->ncols : 0;
}
const char *dagr_rows_colname(const dagr_rows_t *r, int j) {
    return r->names[j];
}
dagr_coltype_t dagr_rows_coltype(const dagr_rows_t *r, int j) {
    return (dagr_coltype_t)r->types[j];
}
bool dagr_rows_valid(const dagr_rows_t *r, int j, int64_t i) {
    return dt_valid(&r->cols[j], i);
}
int64_t dagr_rows_int64(const dagr_rows_t *r, int j, int64_t i) {
    return ((const int64_t *)r->cols[j].values)[i];
}
double dagr_rows_float64(const dagr_rows_t *r, int j, int64_t i) {
    return ((const double *)r->cols[j].values)[i];
}
bool dagr_rows_bool(const dagr_rows_t *r, int j, int64_t i) {
    return ((const uint8_t *)r->cols[j].values)[i] != 0;
}
const char *dagr_rows_string(const dagr_rows_t *r, int j, int64_t i, size_t *len) {
    const dt_column_t *c = &r->cols[j];
    if (len) *len = (size_t)(c->offsets[i + 1] - c->offsets[i]);
    return (const char *)c->values + c->offsets[i];
}
const void *dagr_rows_column(const dagr_rows_t *r, int j, const uint8_t **valid,
                             const int64_t **offsets) {
    if (valid) *valid = r->cols[j].valid;
    if (offsets) *offsets = r->cols[j].offsets;
    return r->cols[j].values;
}
void dagr_rows_free(dagr_rows_t **r) {
    if (!r) return;
    rows_free(*r);
    *r = NULL;
}

/* ---- printing ---- */

/* Row i of column c as text into out (at most n bytes, cut with "..." past 30 characters). */
static void cell(const dt_column_t *c, int64_t i, char *out, size_t n) {
    if (!dt_valid(c, i)) {
        snprintf(out, n, "null");
        return;
    }
    switch (c->type) {
    case DT_INT64:
        snprintf(out, n, "%" PRId64, ((const int64_t *)c->values)[i]);
        break;
    case DT_FLOAT64:
        snprintf(out, n, "%.10g", ((const double *)c->values)[i]);
        break;
    case DT_BOOL:
        snprintf(out, n, "%s", ((const uint8_t *)c->values)[i] ? "true" : "false");
        break;
    case DT_TIMESTAMP: {
        char ts[40];
        dt_format_timestamp(((const int64_t *)c->values)[i], ts);
        snprintf(out, n, "%s", ts);
        break;
    }
    case DT_STRING: {
        int64_t l = c->offsets[i + 1] - c->offsets[i];
        const char *s = (const char *)c->values + c->offsets[i];
        if (l > 30)
            snprintf(out, n, "%.27s...", s);
        else
            snprintf(out, n, "%.*s", (int)l, s);
        break;
    }
    }
}

dagr_status_t dagr_dtable_print(dagr_dtable_t *t, int64_t k, FILE *f) {
    DAGR_TRY(dt_check(t, "print: the table"));
    dagr_rows_t *r = NULL;
    DAGR_TRY(dagr_dtable_fetch(t, k, 0, &r));
    if (dagr_rank(t->ctx) != 0) return DAGR_OK;
    if (!f) f = stdout;
    int nc = r->ncols;
    int *w = calloc((size_t)nc + 1, sizeof *w);
    if (!w) {
        dagr_rows_free(&r);
        return DAGR_ERR(DAGR_ERR_NOMEM, "out of memory");
    }
    char buf[64];
    for (int j = 0; j < nc; j++) {
        w[j] = (int)strlen(r->names[j]);
        for (int64_t i = 0; i < r->n; i++) {
            cell(&r->cols[j], i, buf, sizeof buf);
            int l = (int)strlen(buf);
            if (l > w[j]) w[j] = l;
        }
    }
    for (int j = 0; j < nc; j++)
        fprintf(f, "%s%-*s", j ? "  " : "", w[j], r->names[j]);
    fputc('\n', f);
    for (int j = 0; j < nc; j++) {
        fprintf(f, "%s", j ? "  " : "");
        for (int c = 0; c < w[j]; c++)
            fputc('-', f);
    }
    fputc('\n', f);
    for (int64_t i = 0; i < r->n; i++) {
        for (int j = 0; j < nc; j++) {
            cell(&r->cols[j], i, buf, sizeof buf);
            bool num = r->types[j] == DT_INT64 || r->types[j] == DT_FLOAT64;
            fprintf(f, num ? "%s%*s" : "%s%-*s", j ? "  " : "", w[j], buf);
        }
        fputc('\n', f);
    }
    fprintf(f, "(%lld of %lld rows)\n", (long long)r->n, (long long)t->known_rows);
    dt_free(w);
    dagr_rows_free(&r);
    return DAGR_OK;
}
