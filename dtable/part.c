/* A partition in one buffer (part.h). */
#include "part.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t up64(size_t x) {
    return (x + 63) & ~(size_t)63;
}

static size_t value_bytes(const dt_column_t *c) {
    switch (c->type) {
    case DT_BOOL:
        return (size_t)c->n;
    case DT_STRING:
        return c->nbytes;
    default:
        return (size_t)c->n * 8;
    }
}

size_t dt_column_bytes(const dt_column_t *c) {
    size_t b = value_bytes(c);
    if (c->valid) b += ((size_t)c->n + 7) / 8;
    if (c->type == DT_STRING) b += ((size_t)c->n + 1) * 8;
    return b;
}

/* Row k of the selection: rows[k], or k itself without rows. */
static inline int64_t sel(const int64_t *rows, int64_t k) {
    return rows ? rows[k] : k;
}

/* What a column of the selection needs: whether a selected row is null, and the bytes of
 * the selected strings. */
static void measure(const dt_column_t *c, const int64_t *rows, int64_t n, bool *nulls,
                    size_t *sbytes) {
    *nulls = false;
    *sbytes = 0;
    if (c->valid) {
        if (!rows) {
            for (int64_t i = 0; i < n && !*nulls; i++)
                *nulls = !dt_valid(c, i);
        } else {
            for (int64_t i = 0; i < n && !*nulls; i++)
                *nulls = !dt_valid(c, rows[i]);
        }
    }
    if (c->type == DT_STRING) {
        if (!rows)
            *sbytes = n ? (size_t)(c->offsets[n] - c->offsets[0]) : 0;
        else
            for (int64_t i = 0; i < n; i++)
                *sbytes += (size_t)(c->offsets[rows[i] + 1] - c->offsets[rows[i]]);
    }
}

/* The layout both functions below follow. */
static size_t layout(int ncols, const char *const *names, const dt_column_t *cols, int64_t n,
                     const bool *nulls, const size_t *sbytes) {
    size_t at = up64(sizeof(dt_part_hdr_t) + (size_t)ncols * sizeof(dt_part_col_t));
    size_t nb = 0;
    for (int j = 0; j < ncols; j++)
        nb += strlen(names[j]) + 1;
    at = up64(at + nb);
    for (int j = 0; j < ncols; j++) {
        dt_type_t t = cols[j].type;
        if (nulls[j]) at = up64(at + ((size_t)n + 7) / 8);
        at = up64(at + (t == DT_BOOL ? (size_t)n : t == DT_STRING ? sbytes[j] : (size_t)n * 8));
        if (t == DT_STRING) at = up64(at + ((size_t)n + 1) * 8);
    }
    return at;
}

size_t dt_part_size_rows(int ncols, const char *const *names, const dt_column_t *cols,
                         const int64_t *rows, int64_t n, bool *nulls, size_t *sbytes) {
    for (int j = 0; j < ncols; j++)
        measure(&cols[j], rows, n, &nulls[j], &sbytes[j]);
    return layout(ncols, names, cols, n, nulls, sbytes);
}

size_t dt_part_size(int ncols, const char *const *names, const dt_column_t *cols) {
    size_t at = up64(sizeof(dt_part_hdr_t) + (size_t)ncols * sizeof(dt_part_col_t));
    size_t nb = 0;
    for (int j = 0; j < ncols; j++)
        nb += strlen(names[j]) + 1;
    at = up64(at + nb);
    for (int j = 0; j < ncols; j++) {
        const dt_column_t *c = &cols[j];
        if (c->valid) at = up64(at + ((size_t)c->n + 7) / 8);
        at = up64(at + value_bytes(c));
        if (c->type == DT_STRING) at = up64(at + ((size_t)c->n + 1) * 8);
    }
    return at;
}

/* Zeroes buf[at, up64(at)) and returns up64(at): the gaps between sections, so that a
 * partition's bytes are all set (dt_task_write's buffer comes unset). */
static size_t pad(char *b, size_t at) {
    size_t e = up64(at);
    memset(b + at, 0, e - at);
    return e;
}

/* The header and the names of a partition of ncols columns and nrows rows into b; returns
 * where the first column's buffers go. */
static size_t place_header(char *b, int ncols, const char *const *names, int64_t nrows) {
    dt_part_hdr_t *h = (dt_part_hdr_t *)b;
    dt_part_col_t *pc = (dt_part_col_t *)(h + 1);
    size_t at = pad(b, sizeof *h + (size_t)ncols * sizeof *pc);
    *h = (dt_part_hdr_t){.magic = DT_PART_MAGIC,
                         .ncols = (uint32_t)ncols,
                         .nrows = ncols ? nrows : 0,
                         .names_off = at};
    for (int j = 0; j < ncols; j++) {
        size_t l = strlen(names[j]) + 1;
        memcpy(b + at, names[j], l);
        at += l;
    }
    h->names_bytes = at - h->names_off;
    return pad(b, at);
}

/* Column j's entry and buffers at *at (advanced past them, the gaps zeroed), pointed to by
 * *dst: a zeroed bitmap when nulls, values, and for strings sbytes of values and n + 1
 * offsets, for the caller to fill. */
static void place_col(char *b, size_t *at, int j, dt_type_t type, int64_t nrows, bool nulls,
                      size_t sbytes, dt_column_t *dst) {
    dt_part_col_t *pc = (dt_part_col_t *)((dt_part_hdr_t *)b + 1) + j;
    size_t n = (size_t)nrows, a = *at;
    *pc = (dt_part_col_t){.type = type, .has_valid = nulls};
    *dst = (dt_column_t){.type = type, .n = nrows};
    if (nulls) {
        pc->valid_off = a;
        dst->valid = (uint8_t *)b + a;
        memset(dst->valid, 0, (n + 7) / 8);
        a = pad(b, a + (n + 7) / 8);
    }
    pc->values_off = a;
    dst->values = b + a;
    if (type == DT_STRING) {
        a = pad(b, a + sbytes);
        pc->nbytes = dst->nbytes = sbytes;
        pc->offsets_off = a;
        dst->offsets = (int64_t *)(b + a);
        a = pad(b, a + (n + 1) * 8);
    } else {
        a = pad(b, a + (type == DT_BOOL ? n : n * 8));
    }
    *at = a;
}

size_t dt_part_size_placed(int ncols, const char *const *names, const dt_column_t *cols, int64_t n,
                           const bool *nulls, const size_t *sbytes) {
    return layout(ncols, names, cols, n, nulls, sbytes);
}

void dt_part_place(void *buf, int ncols, const char *const *names, dt_column_t *cols, int64_t n,
                   const bool *nulls, const size_t *sbytes) {
    size_t at = place_header(buf, ncols, names, n);
    for (int j = 0; j < ncols; j++)
        place_col(buf, &at, j, cols[j].type, n, nulls[j], sbytes[j], &cols[j]);
}

/* Writes the selected rows of the columns (all rows without rows; then nulls[j] is whether
 * column j has a bitmap and sbytes[j] its string bytes). */
static void write_sel(void *buf, int ncols, const char *const *names, const dt_column_t *cols,
                      const int64_t *rows, int64_t nrows, const bool *nulls, const size_t *sbytes) {
    char *b = buf;
    size_t at = place_header(b, ncols, names, nrows), n = (size_t)nrows;
    for (int j = 0; j < ncols; j++) {
        const dt_column_t *c = &cols[j];
        dt_column_t d;
        place_col(b, &at, j, c->type, nrows, nulls[j], sbytes[j], &d);
        if (d.valid) {
            if (!rows && c->valid)
                memcpy(d.valid, c->valid, (n + 7) / 8);
            else
                for (size_t i = 0; i < n; i++)
                    d.valid[i >> 3] |= (uint8_t)(dt_valid(c, rows[i]) << (i & 7));
        }
        if (c->type == DT_STRING) {
            char *dv = d.values;
            int64_t *off = d.offsets;
            const char *src = c->values;
            off[0] = 0;
            if (!rows) {
                int64_t base = n ? c->offsets[0] : 0;
                if (sbytes[j]) memcpy(dv, src + base, sbytes[j]);
                for (size_t i = 0; i < n; i++)
                    off[i + 1] = c->offsets[i + 1] - base;
            } else {
                int64_t o = 0;
                for (size_t i = 0; i < n; i++) {
                    int64_t r = rows[i], l = c->offsets[r + 1] - c->offsets[r];
                    memcpy(dv + o, src + c->offsets[r], (size_t)l);
                    off[i + 1] = o += l;
                }
            }
        } else if (c->type == DT_BOOL) {
            uint8_t *dv = d.values;
            const uint8_t *s = c->values;
            if (!rows) {
                if (n) memcpy(dv, s, n);
            } else
                for (size_t i = 0; i < n; i++)
                    dv[i] = s[rows[i]];
        } else {
            uint64_t *dv = d.values;
            const uint64_t *s = c->values;
            if (!rows) {
                if (n) memcpy(dv, s, n * 8);
            } else
                for (size_t i = 0; i < n; i++)
                    dv[i] = s[rows[i]];
        }
    }
}

void dt_part_write_rows(void *buf, int ncols, const char *const *names, const dt_column_t *cols,
                        const int64_t *rows, int64_t n, const bool *nulls, const size_t *sbytes) {
    write_sel(buf, ncols, names, cols, rows, n, nulls, sbytes);
}

void dt_part_write(void *buf, int ncols, const char *const *names, const dt_column_t *cols) {
    bool nulls[ncols > 0 ? ncols : 1];
    size_t sbytes[ncols > 0 ? ncols : 1];
    for (int j = 0; j < ncols; j++) {
        nulls[j] = cols[j].valid != NULL;
        sbytes[j] = cols[j].type == DT_STRING ? cols[j].nbytes : 0;
    }
    write_sel(buf, ncols, names, cols, NULL, ncols ? cols[0].n : 0, nulls, sbytes);
}

int64_t dt_part_nrows(const void *buf, size_t bytes) {
    if (bytes == 0) return 0;
    if (bytes < sizeof(dt_part_hdr_t)) return -1;
    dt_part_hdr_t h;
    memcpy(&h, buf, sizeof h);
    return h.magic == DT_PART_MAGIC && h.nrows >= 0 ? h.nrows : -1;
}

static int bad(char *err, size_t errlen, const char *what) {
    if (errlen) snprintf(err, errlen, "not a table partition (%s)", what);
    return -1;
}

/* Whether [off, off + len) lies in [0, bytes). */
static int inside(uint64_t off, uint64_t len, size_t bytes) {
    return off <= bytes && len <= bytes - off;
}

int dt_part_view(const void *buf, size_t bytes, dt_part_t *p, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    if (bytes == 0) return 0;
    if (((uintptr_t)buf & 7) != 0) {
        p->copy = malloc(bytes);
        if (!p->copy) return -2;
        memcpy(p->copy, buf, bytes);
        buf = p->copy;
    }
    const char *b = buf;
    dt_part_hdr_t h;
    if (bytes < sizeof h) return dt_part_free(p), bad(err, errlen, "too short");
    memcpy(&h, b, sizeof h);
    if (h.magic != DT_PART_MAGIC) return dt_part_free(p), bad(err, errlen, "bad magic");
    if (h.nrows < 0 || h.ncols > 1u << 20 ||
        !inside(sizeof h, (uint64_t)h.ncols * sizeof(dt_part_col_t), bytes) ||
        !inside(h.names_off, h.names_bytes, bytes))
        return dt_part_free(p), bad(err, errlen, "bad header");
    int nc = (int)h.ncols;
    uint64_t n = (uint64_t)h.nrows;
    p->ncols = nc;
    p->nrows = h.nrows;
    p->names = calloc(nc ? (size_t)nc : 1, sizeof *p->names);
    p->cols = calloc(nc ? (size_t)nc : 1, sizeof *p->cols);
    if (!p->names || !p->cols) return dt_part_free(p), -2;
    const char *nm = b + h.names_off, *nend = nm + h.names_bytes;
    for (int j = 0; j < nc; j++) {
        const char *z = memchr(nm, 0, (size_t)(nend - nm));
        if (!z) return dt_part_free(p), bad(err, errlen, "bad names");
        p->names[j] = nm;
        nm = z + 1;
    }
    const dt_part_col_t *pc = (const dt_part_col_t *)(b + sizeof h);
    for (int j = 0; j < nc; j++) {
        dt_part_col_t c = pc[j];
        if (c.type > DT_TIMESTAMP || n > bytes)
            return dt_part_free(p), bad(err, errlen, "bad column");
        uint64_t vb = c.type == DT_BOOL ? n : c.type == DT_STRING ? c.nbytes : n * 8;
        if ((c.values_off & 7) || !inside(c.values_off, vb, bytes) ||
            (c.has_valid && !inside(c.valid_off, (n + 7) / 8, bytes)))
            return dt_part_free(p), bad(err, errlen, "bad column buffers");
        dt_column_t *o = &p->cols[j];
        *o = (dt_column_t){.type = (dt_type_t)c.type,
                           .n = (int64_t)n,
                           .valid = c.has_valid ? (uint8_t *)(b + c.valid_off) : NULL,
                           .values = (void *)(b + c.values_off)};
        if (c.type == DT_STRING) {
            if ((c.offsets_off & 7) || !inside(c.offsets_off, (n + 1) * 8, bytes))
                return dt_part_free(p), bad(err, errlen, "bad string offsets");
            o->offsets = (int64_t *)(b + c.offsets_off);
            o->nbytes = c.nbytes;
            /* Offsets must rise from 0 to nbytes, so that every row lies in the values. */
            int64_t prev = 0;
            if (o->offsets[0] != 0) return dt_part_free(p), bad(err, errlen, "bad string offsets");
            for (uint64_t i = 1; i <= n; i++) {
                if (o->offsets[i] < prev)
                    return dt_part_free(p), bad(err, errlen, "bad string offsets");
                prev = o->offsets[i];
            }
            if ((uint64_t)prev != c.nbytes)
                return dt_part_free(p), bad(err, errlen, "bad string offsets");
        }
    }
    return 0;
}

void dt_part_free(dt_part_t *p) {
    dt_free(p->names);
    dt_free(p->cols);
    dt_free(p->copy);
    memset(p, 0, sizeof *p);
}
