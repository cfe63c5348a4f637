/* Stencils with halo exchange (being written). */
#include "darray_impl.h"

dagr_status_t dagr_darray_stencil(const dagr_darray_t *A, int radius, dagr_boundary_t boundary,
                                  dagr_stencil_fn fn, void *user, dagr_darray_t *B) {
    (void)A, (void)radius, (void)boundary, (void)fn, (void)user, (void)B;
    return DAGR_ERR(DAGR_ERR_UNSUPPORTED, "stencil: not yet implemented");
}
