// The CUDA kernels of the decode and prefill passes, callable from plain C++ (no CUDA
// types in this header: streams are passed as void*, half buffers as uint16_t*).
// Every kernel has a CPU twin in kernels/cpu; tests/test_cuda.cpp checks them against it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pmpd::cuda {

// A nested bit-plane matrix resident on the device, laid out as on disk
// (docs/format.md): planes [bits_max][rows][plane_stride bytes], one f16 table of
// 2^b centroids per row and width b, optional DNS outliers in CSR form.
struct DeviceBitPlanes {
  int64_t rows = 0, cols = 0, plane_stride = 0;
  int bits_min = 0, bits_max = 0;
  const uint8_t* planes = nullptr;  // null where the tiles hold every plane (the model drops them)
  const uint16_t* tables[9] = {};  // tables[b]: [rows][2^b] f16 (b in bits_min..bits_max)
  const int32_t* sp_rowptr = nullptr;
  const int32_t* sp_col = nullptr;
  const uint16_t* sp_val = nullptr;
  int64_t nnz = 0;
  // Planes 0..tiled_planes-1 again in the tile layout of the tensor-core GEMV
  // (pair_lut_gemv.cu), which serves widths 2..tiled_planes (2..4 with pair tables, 5..8
  // with single-weight tables); null: the bit-plane GEMV serves every width.
  const uint32_t* tiled = nullptr;
  int tiled_planes = 0;
  // 0: the tiles hold the rows in order. H > 0 (rows == 2 H): they interleave the halves
  // [0, H) and [H, 2 H) eight rows at a time (tile row blocks 2t, 2t + 1: rows 8t.., H + 8t..),
  // so each 16-row task of the tensor-core GEMV has a fused gate|up matrix's gate rows and
  // the up rows that go with them (GemvOutput::fragments). Set before tile_bitplanes.
  int64_t tiles_interleave = 0;
};

// The tensor-core GEMV decodes widths up to this many planes.
constexpr int kTiledPlanesMax = 8;
// uint32 words of the tile layout of `planes` planes of m (rows padded to 16, columns to 256).
int64_t tiled_words(const DeviceBitPlanes& m, int planes);
// Writes planes 0..planes-1 of m (read in its on-disk layout) in the tile layout.
void tile_bitplanes(const DeviceBitPlanes& m, int planes, uint32_t* out, void* stream);
// Whether the tensor-core GEMV serves m at `bits` (tiles for that width, x fits in shared
// memory): only then may its GEMV write or read fragments (below).
bool pair_lut_serves(const DeviceBitPlanes& m, int bits);
// Halves of the f16 fragment buffer of a GEMV input of `cols` columns (padded to 256).
int64_t fragment_halves(int64_t cols);
// Where column col sits in such a buffer (the half's index; host code, for tests).
int64_t fragment_slot(int64_t col);
// W_b as dense f16 rows from the tiles (m.planes may be null; bits <= tiled_planes), decoded
// as the tensor-core GEMV decodes them.
void tiled_dequant_f16(const DeviceBitPlanes& m, int bits, uint16_t* out, void* stream);
// Host twins of the tile layout, for tests without a GPU (m's planes in host memory): the
// tiled words of planes 0..planes-1, and the code of weight (r, j) read back from them.
std::vector<uint32_t> tile_bitplanes_host(const DeviceBitPlanes& m, int planes);
int tiled_code_host(const DeviceBitPlanes& m, const uint32_t* tiled, int bits, int64_t r, int64_t j);
// The GEMV's decode on the host: from `bits` tile words of one lane and chunk half (plane 0
// first), the codes its tables give for the 32 weights: index 2 p + s for pair p (a fragment
// register's column pair, p = 4 r + i: register r, byte i), column s.
std::vector<int> decoded_codes_host(const uint32_t* words, int bits);


// What the GEMV reads: x itself, or x passed through the operator that precedes the
// layer, computed by each block while it stages x in shared memory (no extra kernel,
// no round trip through device memory).
// Fragments: the input was written, already through its operator and in the tensor-core
// GEMV's f16 order, by the GEMV before (GemvOutput::fragments); the block copies it as is.
enum class GemvPrologue { None, RmsNorm, LayerNorm, GatedActivation, Activation, Fragments };
struct GemvInput {
  const float* x = nullptr;  // cols floats; GatedActivation: 2 * cols (gate, then up)
  GemvPrologue prologue = GemvPrologue::None;
  const uint16_t* fragments = nullptr;  // Fragments: fragment_halves(cols) halves
  const float* norm_w = nullptr;  // RmsNorm / LayerNorm weight (and LayerNorm bias)
  const float* norm_b = nullptr;
  float eps = 0.f;
  int act = 0;  // 0: SiLU, 1: GELU-tanh
  // A folded RMSNorm (GemvOutput::norm_fragments): with prologue Fragments, the fragments hold
  // f16(norm_w[c] * x[c]) and these the sums of x[c]^2 over each 16-row task of the GEMV that
  // wrote them ((cols + 15) / 16 floats); every row sum is scaled by rsqrt(mean x^2 + eps),
  // times norm_gain: the power of two the fragments' norm_w was divided by (so that every
  // |norm_w| <= 1 and f16(norm_w x) fits wherever x does).
  const float* sumsq_partials = nullptr;
  float norm_gain = 1.f;
};
struct GemvOutput {
  float* y = nullptr;
  bool accumulate = false;      // y += W x (a residual add), else y = W x
  const float* bias = nullptr;  // added when set
  // The tensor-core GEMV (pair_lut_serves) can also write the next GEMV's input as f16
  // fragments (GemvPrologue::Fragments), so that GEMV's blocks need not each compute it:
  // act(y) (fragment_op Activation; y's rows are its columns) or act(gate) * up
  // (GatedActivation; a matrix tiled with tiles_interleave = rows / 2, gate rows first).
  // The buffer holds fragment_halves(columns) halves, zero beyond the columns written.
  uint16_t* fragments = nullptr;
  GemvPrologue fragment_op = GemvPrologue::None;
  int act = 0;  // 0: SiLU, 1: GELU-tanh
  // The next GEMV's RMSNorm folded into this one (a residual add's output, decode steps): with
  // norm_fragments set, y's final rows (after the add) are also written as f16(norm_w[r] * y[r])
  // in fragment order, and each 16-row task's sum of y[r]^2 into sumsq_partials[task]; the next
  // GEMV reads both (GemvInput::sumsq_partials) instead of normalizing x in every block.
  const float* norm_w = nullptr;
  uint16_t* norm_fragments = nullptr;
  float* sumsq_partials = nullptr;
  // Scratch for the streaming GEMV over column slices (2..3 bits, more than 4096 columns: the
  // down projections): each of a task's S = ceil(chunk pairs / 16) slices is summed by its own
  // block into slice_partials[(task * S + s) * 16 + row], and the last of the S blocks to count
  // itself in slice_counts[task] adds them in slice order (the same bits every run) and writes
  // the row. slice_tasks: tasks the scratch holds (slice_partials: 64 floats a task, room for
  // S <= 4; slice_counts: one a task, zero when allocated, and every launch leaves them zero).
  // Without it such matrices run the task loop.
  float* slice_partials = nullptr;
  unsigned* slice_counts = nullptr;
  int64_t slice_tasks = 0;
};

// The decode GEMV, reading planes 0..b-1: y[r] (+)= sum_j W_b[r, j] in(x)[j] (+ bias[r]).
void bitplane_gemv(const DeviceBitPlanes& m, int bits, const GemvInput& in, const GemvOutput& out, void* stream);
// The tensor-core GEMV at `bits` (x rounded to f16, f32 accumulation); false (nothing
// launched) where m has no tiles for that width. bitplane_gemv calls it first.
bool pair_lut_gemv(const DeviceBitPlanes& m, int bits, const GemvInput& in, const GemvOutput& out, void* stream);
// The prompt pass's Y[n][rows] = X[n][cols] W_b^T on the tensor cores, decoding the tiles
// as the GEMV does, 8 tokens a mma (pair_lut_gemm.cu): no f16 copy of the layer. X is f32,
// rounded to f16 (as the cuBLAS path rounds it); f32 accumulation. False (nothing launched)
// where m has no tiles for that width.
bool pair_lut_gemm(const DeviceBitPlanes& m, int bits, const float* x, int n, float* y, void* stream);
// The same product as a GEMM tile (widths 2..3): blocks of 128 rows x 64 tokens, each warp
// owning 16 rows over the whole K with its own pair tables, x staged a chunk pair at a time.
// scratch: tile_gemm_scratch_halves(n, cols) halves (x in the kernel's f16 order). False
// (nothing launched) at other widths or without tiles.
bool pair_lut_gemm_tile(const DeviceBitPlanes& m, int bits, const float* x, int n, float* y, uint16_t* scratch,
                        void* stream);
int64_t tile_gemm_scratch_halves(int n, int64_t cols);
// 2..3-bit matrices on the task loop run as one block an SM with two items in flight a warp
// instead of two blocks with one: -1 (the default), where that costs no SMs (a task a block,
// or at 3 bits blocks that still fill nine SMs in ten); N >= 0, those of at most N columns
// (0: none). Initial value from PMPD_CUDA_GEMV_ONE_BLOCK_COLS (docs/cuda.md).
void set_pair_lut_one_block_cols(int cols);
// Whether 2..3-bit matrices of up to 4096 columns (16 chunk pairs of 256 columns) may run
// the streaming GEMV (each warp keeps its 256 columns of x in registers and walks its share of
// the block's tasks; on by default, initial value from PMPD_CUDA_GEMV_STREAM) or always the task
// loop (off), for comparisons and tests; shared: also where fewer than 16 chunk pairs make the
// warps share them (PMPD_CUDA_GEMV_STREAM_SHARED). set_pair_lut_stream_rounds_3bit(N): at 3
// bits only where a block has N tasks or more (default 1).
void set_pair_lut_stream(bool on, bool shared = true);
void set_pair_lut_stream_rounds_3bit(int rounds);
// Where one block an SM cannot hold the tables of all its tasks (an LM head), whether the
// streaming GEMV runs in waves of blocks (on by default; initial value from
// PMPD_CUDA_GEMV_STREAM_WAVES) or leaves the matrix to the task loop; max_rounds > 0 caps a
// block's tasks (tests: waves on small matrices). Returns the cap it replaces.
int set_pair_lut_stream_waves(bool on, int max_rounds = 0);
// Items each warp of the streaming GEMV keeps in flight: 1 (the default) or 2 (initial value
// from PMPD_CUDA_GEMV_STREAM_AHEAD). Returns the setting it replaces.
int set_pair_lut_stream_ahead(int items);
// Where 2..3-bit matrices of 4097..16384 columns run the streaming GEMV over column slices
// (the output bringing the scratch, GemvOutput::slice_partials) instead of the task loop:
// 0 nowhere, 1 where it pays (the default: 3 bits, three tasks a block or more), 2 wherever the
// tables fit. Initial value from PMPD_CUDA_GEMV_SLICES. Returns the setting it replaces.
int set_pair_lut_slices(int mode);
// Whether 4-bit matrices of 16 chunk pairs (4096 columns) run the rolling streaming GEMV
// (on by default; initial value from PMPD_CUDA_GEMV_ROLL) or the task loop; max_blocks > 0
// caps its grid (tests: more tasks a block, so that its table slots are rebuilt).
void set_pair_lut_roll(bool on, int max_blocks = 0);
// Which kernel the last pair-table GEMV launched (tests: that a path ran, not a fallback).
enum class PairLutKernel { None, TaskLoop, Streaming, ColumnSlices, Rolling };
PairLutKernel pair_lut_last_kernel();
// Floats of GemvOutput::slice_partials for a matrix of `rows` rows (slice_counts: one a
// 16-row task, ceil(rows / 16)).
int64_t slice_partial_floats(int64_t rows);
// Plain form: y = W_b x.
void bitplane_gemv(const DeviceBitPlanes& m, int bits, const float* x, float* y, void* stream);
// in(x) written to out (cols floats): the prologue on its own (16-bit layers, tests).
void apply_prologue(const GemvInput& in, int64_t cols, float* out, void* stream);
// W_b as a dense f16 matrix [rows][cols] (outliers included): the prefill path feeds it to
// cuBLAS. From the tiles where they hold the width (faster), else from the on-disk planes.
void bitplane_dequant_f16(const DeviceBitPlanes& m, int bits, uint16_t* out, void* stream);

// Element-wise and per-token operators. Shapes follow kernels/cpu/ops.h; n tokens.
void embed_rows_f16(const uint16_t* table, const int* tokens, int n, int dim, float* out, void* stream);
// The norm of each of n token rows of x (RMSNorm where rms, else LayerNorm with optional w and
// b): first x += add0 (then += add1) where given, written back (the residual adds before the
// norm); out = the norm (f32), and out16, where given, the same rounded to f16.
void norm_rows(bool rms, float* x, const float* add0, const float* add1, const float* w, const float* b, float* out,
               uint16_t* out16, int n, int dim, float eps, void* stream);
void f32_to_f16(const float* x, uint16_t* out, int64_t count, void* stream);
// Where a greedy pass leaves the next decode step's input on the device, so that step can be
// queued before the host has seen the token: the token into next.token[0], and step->pos0
// advanced by the pass's token count. Null token: nothing.
struct StepState;
struct NextStep {
  int* token = nullptr;
  StepState* step = nullptr;
  int advance = 0;
};
// out = the index of the largest of x[0..n), the first among equals (greedy decoding).
void argmax(const float* x, int n, int* out, void* stream, const NextStep& next = {});
// A sampled token's draw (decode/sample_draw.h) as the kernel takes it.
struct SampleParams {
  float temperature = 0.f, top_p = 1.f, min_p = 0.f, repeat_penalty = 1.f;
  int top_k = 0;
  int n_penalized = 0;  // tokens in `penalized`
  double u = 0;
};
// out = the token Sampler::pick gives for the logits x[0..n) and the draw p (sample.cu; the
// same token up to the order of floating-point sums). Applies the repetition penalty to
// penalized[0..p.n_penalized) in x. mass: n scratch words.
void sample_token(float* x, int n, const SampleParams& p, const int* penalized, unsigned long long* mass, int* out,
                  void* stream, const NextStep& next = {});
void add_inplace(float* x, const float* y, int64_t count, void* stream);
// x[t, c] += bias[c] for every token row (row length `cols`).
void add_bias(float* x, const float* bias, int n, int cols, void* stream);
// out[t, i] = act(gate[t, i]) * up[t, i] (gated) or act(up) where gate is null; act: 0 SiLU, 1 GELU-tanh.
// gate and up are columns [0, F) and [F, 2F) (gated) of rows of length `stride`.
// out16, where given: the same rounded to f16.
void mlp_activation(const float* in, int n, int F, int stride, bool gated, int act, float* out, void* stream,
                    uint16_t* out16 = nullptr);

// The per-step values that change between decode steps live in device memory, so a
// captured CUDA graph replays for every position.
struct StepState {
  int pos0;  // position of the first token of this pass
};

// The attention kernels take heads of up to this many dimensions.
constexpr int kMaxHeadDim = 256;

// The caches are named by device slots holding their addresses (kv_slots[0]: keys,
// kv_slots[1]: values, each [max_seq][kv_dim] f16), so a graph serves any cache.
//
// Rotates q (n_heads) and k (n_kv_heads) heads of each token row of `qkv` (row stride
// `stride` floats; k starts at column k_off) at positions step->pos0 + t, then stores k
// and v (column v_off) as f16 into the layer's caches.
void rope_and_store(float* qkv, int n, int stride, int n_heads, int n_kv_heads, int head_dim, int rotary_dim,
                    bool interleaved, const float* inv_freq, int k_off, int v_off, uint16_t* const* kv_slots,
                    const StepState* step, void* stream);
// Causal attention of n query tokens (row stride `q_stride`) over positions
// 0 .. pos0 + t of one layer's f16 caches; out: [n][n_heads * head_dim]. max_ctx bounds
// pos0 + n. Heads whose size is a multiple of 8 run on the tensor cores
// (attention_prefill_mma.cu: tiles of 64 queries and 64 keys, q and P split into two f16
// parts each), others on the f32 pipes (attention_prefill.cu: 64 queries, 32 keys).
// Shared memory the attention kernels (prompt and decode) need at most for a head size and
// a context bound (the decode kernel keeps a row of scores for heads not a multiple of 8).
size_t attention_smem_bytes(int head_dim, int max_ctx);
void attention(const float* q, int n, int q_stride, int n_heads, int n_kv_heads, int head_dim,
               uint16_t* const* kv_slots, int max_ctx, const StepState* step, float* out, void* stream);
// The tensor cores' prompt attention: false (nothing launched) where the head does not fit
// it or it is off (PMPD_CUDA_PREFILL_MMA=0, or set_prefill_attention_mma(0) for tests; -1
// goes back to the environment's setting).
bool prefill_attention_mma(const float* q, int n, int q_stride, int n_heads, int n_kv_heads, int head_dim,
                           uint16_t* const* kv_slots, const StepState* step, float* out, void* stream);
bool prefill_attention_mma_fits(int head_dim);
size_t prefill_attention_mma_smem_bytes(int head_dim);
void set_prefill_attention_mma(int on);

// The decode step's attention (one token at position step->pos0) with its RoPE and KV
// store fused in, split along the context over `splits` blocks a head (flash-decoding).
struct DecodeAttentionArgs {
  const float* qkv = nullptr;  // the token's q | k | v row, not yet rotated
  int n_heads = 0, n_kv_heads = 0, head_dim = 0, rotary_dim = 0;
  bool interleaved = false;
  const float* inv_freq = nullptr;
  int k_off = 0, v_off = 0;  // columns of k and v in the row
  uint16_t* const* kv_slots = nullptr;
  const StepState* step = nullptr;
  int max_ctx = 0;
  int splits = 1;                // attention_decode_splits
  int threads = 0;               // a block's; 0: attention_decode_threads
  float* partial = nullptr;      // attention_decode_partial_floats floats
  unsigned* counters = nullptr;  // n_heads, zero before the first call (each call leaves them zero)
  float* out = nullptr;          // n_heads * head_dim
  // Also the output as the output projection's input, f16 in the tensor-core GEMV's order
  // (GemvPrologue::Fragments; fragment_halves(n_heads * head_dim) halves, zero past the end).
  uint16_t* fragments = nullptr;
  // Set by attention_decode: a head's splits merge through their cluster's shared memory
  // (Hopper) instead of `partial` and `counters`.
  bool cluster_merge = false;
};
// Splits a head for a device, a head size, a context bound and the step's context (positions
// attended, the new one included): below 1792 positions about one 256-thread block an SM (heads
// of at most 64 below 512 positions: one 512-thread block a head); more and smaller blocks from
// there on (PMPD_CUDA_ATTN_SPLITS overrides).
int attention_decode_splits(int n_heads, int head_dim, int max_ctx, int context);
size_t attention_decode_partial_floats(int n_heads, int head_dim, int splits);
// Threads a block of the decode attention at a split count (PMPD_CUDA_ATTN_THREADS overrides).
int attention_decode_threads(int n_heads, int head_dim, int max_ctx, int splits);
size_t attention_decode_smem_bytes(int head_dim, int max_ctx, int splits);
void attention_decode(const DecodeAttentionArgs& a, void* stream);

}  // namespace pmpd::cuda
