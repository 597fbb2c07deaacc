// llama.cpp's block-quantized tensor types (ggml-common.h), decoded to f32 so that a GGUF
// file quantized by llama.cpp can be read like a 16-bit one: pmpd widens such matrices at
// load and then quantizes them into its own nested form. Each type packs a row as blocks of
// 32 (Q4_0..Q8_0) or 256 (the K types) elements with f16 scales; the element order and the
// float operations follow llama.cpp's gguf-py `dequantize`. tools/make_ggml_quant_fixture.py
// writes gguf-py's decoding of random blocks of every type for tests/test_ggml_blocks.cpp to
// compare against bit for bit (the test waits, disabled, for a machine with gguf-py to make it).
#pragma once
#include <cstddef>

#include "core/dtype.h"

namespace pmpd {

// n elements (a multiple of block_elems(t)) of block type t at src to f32.
void dequantize_ggml_blocks(DType t, const void* src, float* dst, size_t n);

// The ggml type id of a block type (ggml.h's enum ggml_type) and back: Unknown for ids pmpd
// does not decode; ggml_type_name names any id for error messages.
uint32_t ggml_type_id(DType t);
DType dtype_from_ggml_type(uint32_t id);
const char* ggml_type_name(uint32_t id);

}  // namespace pmpd
