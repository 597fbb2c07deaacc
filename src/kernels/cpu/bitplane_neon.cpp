// The NEON integer bit-plane kernel with widening multiplies (every AArch64 core).
#include "core/arch.h"
#ifdef PMPD_NEON
#define PMPD_NEON_SDOT 0
#include "kernels/cpu/bitplane_neon_kernel.h"

namespace pmpd::kernels {
const Int8RowsFn* neon_int8_kernels() { return kNeonKernels; }
}  // namespace pmpd::kernels
#endif
