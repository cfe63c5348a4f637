/* ScaLAPACK interoperability (being written). */
#include "darray_impl.h"

dagr_status_t dagr_darray_from_scalapack(dagr_ctx_t *ctx, dagr_dtype_t dtype, const int desc[9],
                                         void *local, dagr_darray_t **out) {
    (void)ctx, (void)dtype, (void)desc, (void)local, (void)out;
    return DAGR_ERR(DAGR_ERR_UNSUPPORTED, "scalapack: not yet implemented");
}
dagr_status_t dagr_darray_scalapack_acquire(dagr_darray_t *A, int desc[9], void **local) {
    (void)A, (void)desc, (void)local;
    return DAGR_ERR(DAGR_ERR_UNSUPPORTED, "scalapack: not yet implemented");
}
dagr_status_t dagr_darray_scalapack_release(dagr_darray_t *A, int desc[9], void **local,
                                            int writeback) {
    (void)A, (void)desc, (void)local, (void)writeback;
    return DAGR_ERR(DAGR_ERR_UNSUPPORTED, "scalapack: not yet implemented");
}
