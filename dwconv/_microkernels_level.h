/* One instruction-set level of the micro-kernels: the body for float and for double.
 * The includer defines DW_ISA (the level's name), DW_VBYTES (its vector width) and, where a level
 * with narrower vectors was included before, DW_NARROWER (that level's name); all are consumed. */
#define DW_T float
#define DW_LANES (DW_VBYTES / 4)
#define DW_FN(n) DW_CAT3(n, DW_ISA, f32)
#define DW_NARROWER_FN(n) DW_CAT3(n, DW_NARROWER, f32)
#include "_microkernels_body.h"
#include "_microkernels_row.h"
#include "_microkernels_flat.h"
#include "_microkernels_convert.h"
#include "_microkernels_separable.h"
#include "_microkernels_spectral.h"
#undef DW_T
#undef DW_LANES
#undef DW_FN
#undef DW_NARROWER_FN
#define DW_T double
#define DW_LANES (DW_VBYTES / 8)
#define DW_FN(n) DW_CAT3(n, DW_ISA, f64)
#define DW_NARROWER_FN(n) DW_CAT3(n, DW_NARROWER, f64)
#include "_microkernels_body.h"
#include "_microkernels_row.h"
#include "_microkernels_flat.h"
#include "_microkernels_separable.h"
#undef DW_T
#undef DW_LANES
#undef DW_FN
#undef DW_NARROWER_FN
#undef DW_ISA
#undef DW_VBYTES
#undef DW_NARROWER
