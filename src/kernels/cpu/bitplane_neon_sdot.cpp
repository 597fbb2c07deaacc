// The NEON integer bit-plane kernel with SDOT (compiled with +dotprod, CMakeLists.txt; run
// only where the CPU reports the dot-product extension).
#include "core/arch.h"
#ifdef PMPD_NEON
#define PMPD_NEON_SDOT 1
#include "kernels/cpu/bitplane_neon_kernel.h"

namespace pmpd::kernels {
const Int8RowsFn* neon_int8_kernels_sdot() { return kNeonKernels; }
}  // namespace pmpd::kernels
#endif
