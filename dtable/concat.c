/* Column concatenation (dtable_impl.h): the rows of several columns into one. */
#include "dtable_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Sets the bits of dst from `at` on for the valid rows of s (dst starts zeroed). */
static void copy_bits(uint8_t *dst, int64_t at, const dt_column_t *s) {
    for (int64_t i = 0; i < s->n; i++)
        if (dt_valid(s, i)) dst[(at + i) >> 3] |= (uint8_t)(1u << ((at + i) & 7));
}

int dt_column_concat(const dt_column_t *const *src, int n, dt_type_t type, dt_column_t *dst) {
    int64_t rows = 0;
    size_t bytes = 0;
    bool nulls = false;
    for (int i = 0; i < n; i++) {
        if (src[i]->type != type && src[i]->n > 0) return -EINVAL; /* empty: any type */
        rows += src[i]->n;
        bytes += src[i]->nbytes;
        nulls |= src[i]->valid != NULL && src[i]->n > 0;
    }
    dt_column_t c = {.type = type, .n = rows};
    size_t w = type == DT_BOOL ? 1 : 8;
    size_t vb = type == DT_STRING ? bytes : (size_t)rows * w;
    c.values = dt_alloc(vb);
    if (type == DT_STRING) {
        c.offsets = dt_alloc(((size_t)rows + 1) * sizeof *c.offsets);
    }
    if (nulls) c.valid = calloc(((size_t)rows + 7) / 8 + 1, 1);
    if (!c.values || (type == DT_STRING && !c.offsets) || (nulls && !c.valid)) {
        dt_column_free(&c);
        return -ENOMEM;
    }
    int64_t at = 0;
    size_t bat = 0;
    if (type == DT_STRING) c.offsets[0] = 0;
    for (int i = 0; i < n; i++) {
        const dt_column_t *s = src[i];
        if (type == DT_STRING) {
            if (s->nbytes) memcpy((char *)c.values + bat, s->values, s->nbytes);
            for (int64_t r = 0; r < s->n; r++)
                c.offsets[at + r + 1] = (int64_t)bat + s->offsets[r + 1];
            bat += s->nbytes;
        } else if (s->n) {
            memcpy((char *)c.values + (size_t)at * w, s->values, (size_t)s->n * w);
        }
        if (nulls) copy_bits(c.valid, at, s);
        at += s->n;
    }
    c.nbytes = type == DT_STRING ? bytes : 0;
    *dst = c;
    return 0;
}
