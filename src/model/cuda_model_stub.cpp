// The CUDA backend of a build without CUDA: says so when asked for.
#include "core/error.h"
#include "model/cuda_model.h"

namespace pmpd::cuda {

bool compiled() { return false; }
int device_count() { return 0; }
std::string device_name() { return "none (pmpd was built without CUDA)"; }

double copy_bandwidth_gbs() { fail("this pmpd was built without CUDA"); }
std::vector<DecodeCeiling> measure_decode_ceilings(int, int) { fail("this pmpd was built without CUDA"); }
std::vector<GemvScaling> measure_gemv_scaling(int, long long, const std::vector<long long>&) {
  fail("this pmpd was built without CUDA");
}
std::vector<SyncCost> measure_sync_costs(const std::vector<long long>&, int) { fail("this pmpd was built without CUDA"); }
SyncChainOutputs run_sync_chain(int, int) { fail("this pmpd was built without CUDA"); }
void set_prefill_cache(bool) {}
int max_resident_clusters(int) { fail("this pmpd was built without CUDA"); }

std::unique_ptr<DeviceModel> DeviceModel::create(const Model&) {
  fail("this pmpd was built without CUDA; rebuild with nvcc on the PATH (cmake -DPMPD_CUDA=ON) for --backend cuda");
}

}  // namespace pmpd::cuda
