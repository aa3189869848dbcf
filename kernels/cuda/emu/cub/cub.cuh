// cub/cub.cuh of rljob's CUDA emulator: the one CUB algorithm sample.cu
// calls, DeviceSegmentedRadixSort::SortPairsDescending, as a stable sort
// of each segment by the radix order of the keys (for floating keys: the
// sign-flipped bits, -0.0 taken as +0.0), largest first.
#pragma once
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "cuda_runtime.h"

namespace cub {
namespace rjemu_detail {
inline uint64_t radix_key(double k) {
  if (k == 0) k = 0;  // -0.0 sorts as +0.0
  uint64_t u;
  memcpy(&u, &k, 8);
  return (u >> 63) ? ~u : u | 0x8000000000000000ull;
}
inline uint64_t radix_key(float k) {
  if (k == 0) k = 0;
  uint32_t u;
  memcpy(&u, &k, 4);
  return (u >> 31) ? ~u : u | 0x80000000u;
}
}  // namespace rjemu_detail

struct DeviceSegmentedRadixSort {
  template <class K, class V, class Off>
  static cudaError_t SortPairsDescending(void *temp, size_t &temp_bytes, const K *keys_in, K *keys_out,
                                         const V *vals_in, V *vals_out, int num_items, int num_segments, Off begin,
                                         Off end, int begin_bit = 0, int end_bit = sizeof(K) * 8,
                                         cudaStream_t stream = 0, bool debug = false) {
    (void)num_items, (void)begin_bit, (void)end_bit, (void)stream, (void)debug;
    if (!temp) {
      temp_bytes = 256;
      return cudaSuccess;
    }
    std::vector<int> idx;
    for (int s = 0; s < num_segments; s++) {
      int lo = begin[s], hi = end[s];
      idx.resize(hi > lo ? hi - lo : 0);
      for (int i = lo; i < hi; i++) idx[i - lo] = i;
      std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
        return rjemu_detail::radix_key(keys_in[a]) > rjemu_detail::radix_key(keys_in[b]);
      });
      for (int i = lo; i < hi; i++) {
        keys_out[i] = keys_in[idx[i - lo]];
        vals_out[i] = vals_in[idx[i - lo]];
      }
    }
    return cudaSuccess;
  }
};
}  // namespace cub
