// The CPU family this translation unit is compiled for: PMPD_X86 (x86-64 / i386, whose AVX2
// and AVX-512 kernels are picked at run time) or PMPD_NEON (AArch64, where NEON is always
// there). Neither: the scalar kernels only.
#pragma once
#if defined(__x86_64__) || defined(__i386__)
#define PMPD_X86 1
#elif defined(__aarch64__)
#define PMPD_NEON 1
#endif
