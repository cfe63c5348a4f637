/* (being written) */
#include "linalg_impl.h"
