/* DTable's columns: freeing and naming (column.h). */
#include "column.h"

#include <stdlib.h>

void dt_column_free(dt_column_t *c) {
    if (!c) return;
    free(c->valid);
    free(c->values);
    free(c->offsets);
    c->valid = NULL;
    c->values = NULL;
    c->offsets = NULL;
    c->n = 0;
    c->nbytes = 0;
}

const char *dt_type_name(dt_type_t t) {
    switch (t) {
    case DT_INT64:
        return "int64";
    case DT_FLOAT64:
        return "float64";
    case DT_BOOL:
        return "bool";
    case DT_STRING:
        return "string";
    case DT_TIMESTAMP:
        return "timestamp";
    }
    return "unknown";
}
