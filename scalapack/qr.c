/* QR and least squares: p?geqrf_, p?ormqr_, p?gels_. */
#include "dropin.h"

typedef const int cint;

typedef void geqrf_fn(cint *, cint *, void *, cint *, cint *, cint *, void *, void *, cint *,
                      int *);

static void geqrf(dagr_dtype_t dt, const char *name, cint *m, cint *n, void *a, cint *ia, cint *ja,
                  cint *desca, void *tau, void *work, cint *lwork, int *info) {
    sp_pass_early(SP_GEQRF, dt, desca[SP_CTXT], SP_PASS_CASE);
    ((geqrf_fn *)sp_next(name))(m, n, a, ia, ja, desca, tau, work, lwork, info);
}

SP_EXPORT void pdgeqrf_(cint *m, cint *n, double *a, cint *ia, cint *ja, cint *desca, double *tau,
                        double *work, cint *lwork, int *info) {
    geqrf(DAGR_DOUBLE, "pdgeqrf_", m, n, a, ia, ja, desca, tau, work, lwork, info);
}
SP_EXPORT void psgeqrf_(cint *m, cint *n, float *a, cint *ia, cint *ja, cint *desca, float *tau,
                        float *work, cint *lwork, int *info) {
    geqrf(DAGR_FLOAT, "psgeqrf_", m, n, a, ia, ja, desca, tau, work, lwork, info);
}
