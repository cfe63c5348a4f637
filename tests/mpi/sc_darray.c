/* DArray helpers shared by the darray and linalg scenario programs (see scenario.h). */
#include "scenario.h"

#include <math.h>
#include <stdlib.h>

const char *sc_dtype_name(dagr_dtype_t t) {
    return t == DAGR_FLOAT ? "float" : t == DAGR_INT64 ? "int64" : "double";
}

double sc_eps(dagr_dtype_t t) {
    return t == DAGR_FLOAT ? 0x1p-24 : 0x1p-53;
}

double *sc_gather(const dagr_darray_t *A) {
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A), ld = sc_ld(m);
    dagr_dtype_t t = dagr_darray_dtype(A);
    void *raw = calloc((size_t)(ld * n) + 1, dagr_dtype_size(t));
    double *out = calloc((size_t)(ld * n) + 1, sizeof *out);
    SC_TRY(dagr_darray_gather(A, raw, ld, -1));
    for (int64_t k = 0; k < ld * n; k++)
        out[k] = t == DAGR_FLOAT   ? ((float *)raw)[k]
                 : t == DAGR_INT64 ? (double)((int64_t *)raw)[k]
                                   : ((double *)raw)[k];
    free(raw);
    return out;
}

void sc_scatter(dagr_darray_t *A, const double *x) {
    int64_t m = dagr_darray_rows(A), n = dagr_darray_cols(A), ld = sc_ld(m);
    dagr_dtype_t t = dagr_darray_dtype(A);
    void *raw = calloc((size_t)(ld * n) + 1, dagr_dtype_size(t));
    for (int64_t k = 0; k < ld * n; k++) {
        if (t == DAGR_FLOAT) ((float *)raw)[k] = (float)x[k];
        if (t == DAGR_INT64) ((int64_t *)raw)[k] = (int64_t)x[k];
        if (t == DAGR_DOUBLE) ((double *)raw)[k] = x[k];
    }
    SC_TRY(dagr_darray_scatter(A, raw, ld, -1));
    free(raw);
}

double sc_norm1(const double *a, int64_t m, int64_t n, int64_t ld) {
    double best = 0;
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t i = 0; i < m; i++)
            s += fabs(a[i + j * ld]);
        if (isnan(s)) return NAN;
        if (s > best) best = s;
    }
    return best;
}
