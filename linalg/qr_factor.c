/* The QR factor object of both storages (qr_impl.h): made by qr_alloc for geqrf.c's tile form
 * and qr_householder.c's LAPACK form, released by dagr_qr_destroy. Apart from both, so that
 * neither algorithm's file depends on the other. */
#include "qr_impl.h"

#include <stdbool.h>
#include <stdlib.h>

dagr_status_t dagr_qr_destroy(dagr_qr_t **qr) {
    if (!qr || !*qr) return DAGR_OK;
    dagr_qr_t *q = *qr;
    /* a factor whose creation failed part-way has some of these unset */
    for (int64_t s = 0; q->tg && q->tc && s < q->mt * q->nt; s++) {
        dagr_data_destroy(&q->tg[s]);
        dagr_data_destroy(&q->tc[s]);
    }
    for (int64_t k = 0; q->T && q->Vd && k < q->nk; k++) {
        dagr_data_destroy(&q->T[k]);
        dagr_data_destroy(&q->Vd[k]);
    }
    free(q->tg);
    free(q->tc);
    free(q->ops);
    free(q->T);
    free(q->Vd);
    free(q);
    *qr = NULL;
    return DAGR_OK;
}

dagr_status_t qr_alloc(const dagr_darray_t *A, int form, int64_t ib, dagr_qr_t **out) {
    int64_t nk = A->mt < A->nt ? A->mt : A->nt, slots = A->mt * A->nt;
    dagr_qr_t *qr = calloc(1, sizeof *qr);
    bool ok = qr != NULL;
    if (ok && form == QR_FORM_TILE) {
        qr->tg = calloc((size_t)slots + 1, sizeof *qr->tg);
        qr->tc = calloc((size_t)slots + 1, sizeof *qr->tc);
        qr->ops = calloc((size_t)(2 * A->mt * nk) + 1, sizeof *qr->ops);
        ok = qr->tg && qr->tc && qr->ops;
    } else if (ok) {
        qr->T = calloc((size_t)nk + 1, sizeof *qr->T);
        qr->Vd = calloc((size_t)nk + 1, sizeof *qr->Vd);
        ok = qr->T && qr->Vd;
    }
    if (!ok) {
        dagr_qr_destroy(&qr);
        return DAGR_ERR(DAGR_ERR_NOMEM, "no memory for the QR factor of a %lld x %lld array",
                        (long long)A->m, (long long)A->n);
    }
    qr->ctx = A->ctx;
    qr->dtype = A->dtype;
    qr->form = form;
    qr->m = A->m;
    qr->n = A->n;
    qr->mb = A->mb;
    qr->mt = A->mt;
    qr->nt = A->nt;
    qr->nk = nk;
    qr->ib = ib < A->nb ? ib : A->nb;
    *out = qr;
    return DAGR_OK;
}
