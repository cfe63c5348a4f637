/* Hashing and comparing key columns (dtable_impl.h): group-by and joins put equal keys in
 * the same partition and the same hash table slot whatever partition they come from. */
#include "dtable_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static inline uint64_t mix64(uint64_t z) {
    z ^= z >> 33;
    z *= 0xff51afd7ed558ccdull;
    z ^= z >> 33;
    z *= 0xc4ceb9fe1a85ec53ull;
    z ^= z >> 33;
    return z;
}

/* Bytes, 8 at a time (a multiply-mix per word; strings are short keys, mostly). */
static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xc2b2ae3d27d4eb4full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w)) * 0x9ddfea08eb382d69ull;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    return mix64(h ^ w ^ (n << 56));
}

#define NULL_HASH 0x5bd1e9955bd1e995ull

void dt_hash_rows(const dt_column_t *cols, int nkeys, const int *keys, int64_t n, uint64_t *h) {
    for (int64_t i = 0; i < n; i++)
        h[i] = 0x243f6a8885a308d3ull;
    for (int k = 0; k < nkeys; k++) {
        const dt_column_t *c = &cols[keys[k]];
        switch (c->type) {
        case DT_INT64:
        case DT_TIMESTAMP: {
            const int64_t *v = c->values;
            for (int64_t i = 0; i < n; i++)
                h[i] = mix64(h[i] ^ (uint64_t)v[i]) + (uint64_t)k;
            break;
        }
        case DT_FLOAT64: {
            const double *v = c->values;
            for (int64_t i = 0; i < n; i++) {
                double d = v[i] == 0 ? 0.0 : isnan(v[i]) ? NAN : v[i];
                uint64_t b;
                memcpy(&b, &d, 8);
                h[i] = mix64(h[i] ^ b) + (uint64_t)k;
            }
            break;
        }
        case DT_BOOL: {
            const uint8_t *v = c->values;
            for (int64_t i = 0; i < n; i++)
                h[i] = mix64(h[i] ^ (v[i] ? 0x1234567ull : 0x7654321ull)) + (uint64_t)k;
            break;
        }
        case DT_STRING: {
            const unsigned char *v = c->values;
            for (int64_t i = 0; i < n; i++)
                h[i] = mix64(h[i] ^ hash_bytes(v + c->offsets[i],
                                               (size_t)(c->offsets[i + 1] - c->offsets[i]))) +
                       (uint64_t)k;
            break;
        }
        }
        if (c->valid) /* nulls: one hash whatever the value slot holds */
            for (int64_t i = 0; i < n; i++)
                if (!dt_valid(c, i)) h[i] = mix64(h[i] ^ NULL_HASH);
    }
}

bool dt_keys_equal(const dt_column_t *a, const int *akeys, int64_t i, const dt_column_t *b,
                   const int *bkeys, int64_t k, int nkeys, bool nulls_equal) {
    for (int c = 0; c < nkeys; c++) {
        const dt_column_t *x = &a[akeys[c]], *y = &b[bkeys[c]];
        bool vx = dt_valid(x, i), vy = dt_valid(y, k);
        if (!vx || !vy) {
            if (vx != vy || !nulls_equal) return false;
            continue;
        }
        switch (x->type) {
        case DT_INT64:
        case DT_TIMESTAMP:
            if (((const int64_t *)x->values)[i] != ((const int64_t *)y->values)[k]) return false;
            break;
        case DT_FLOAT64: {
            double p = ((const double *)x->values)[i], q = ((const double *)y->values)[k];
            if (!(p == q || (isnan(p) && isnan(q)))) return false;
            break;
        }
        case DT_BOOL:
            if (((const uint8_t *)x->values)[i] != ((const uint8_t *)y->values)[k]) return false;
            break;
        case DT_STRING: {
            int64_t lx = x->offsets[i + 1] - x->offsets[i], ly = y->offsets[k + 1] - y->offsets[k];
            if (lx != ly || memcmp((const char *)x->values + x->offsets[i],
                                   (const char *)y->values + y->offsets[k], (size_t)lx) != 0)
                return false;
            break;
        }
        }
    }
    return true;
}

void dt_hash_window(const dt_column_t *cols, int nkeys, const int *keys, int64_t i0, int64_t m,
                    uint64_t *h) {
    /* Views of the key columns from row i0 (strings keep their offsets; a bitmap starts at
     * byte i0 / 8, which is why i0 is a multiple of 8). */
    dt_column_t sub[DT_HASH_WINDOW_MAX];
    int idx[DT_HASH_WINDOW_MAX];
    for (int k = 0; k < nkeys; k++) {
        const dt_column_t *c = &cols[keys[k]];
        dt_column_t w = *c;
        w.n = m;
        if (c->type == DT_STRING)
            w.offsets = c->offsets + i0;
        else
            w.values = (char *)c->values + (size_t)i0 * (c->type == DT_BOOL ? 1 : 8);
        if (c->valid) w.valid = c->valid + i0 / 8;
        sub[k] = w;
        idx[k] = k;
    }
    dt_hash_rows(sub, nkeys, idx, m, h);
}

int dt_route_hash(const dt_part_t *in, const void *args, size_t args_size, int nextra,
                  const dt_part_t *extra, uint32_t nout, uint32_t *dest, char *err) {
    (void)args_size;
    (void)nextra;
    (void)extra;
    int32_t nk;
    memcpy(&nk, args, sizeof nk);
    int keys[64];
    if (nk < 1 || nk > 64) {
        snprintf(err, 256, "hash shuffle: %d keys (1 to 64)", nk);
        return -1;
    }
    for (int k = 0; k < nk; k++) {
        int32_t j;
        memcpy(&j, (const char *)args + 4 + 4 * k, 4);
        if (j < 0 || j >= in->ncols) {
            snprintf(err, 256, "hash shuffle: key column %d of a partition of %d columns", j,
                     in->ncols);
            return -1;
        }
        keys[k] = j;
    }
    enum { CHUNK = 4096 };
    uint64_t h[CHUNK];
    for (int64_t i0 = 0; i0 < in->nrows; i0 += CHUNK) {
        int64_t m = in->nrows - i0 < CHUNK ? in->nrows - i0 : CHUNK;
        dt_hash_window(in->cols, nk, keys, i0, m, h); /* CHUNK is a multiple of 8 */
        for (int64_t i = 0; i < m; i++)
            dest[i0 + i] = dt_route_of(h[i], nout);
    }
    return 0;
}
