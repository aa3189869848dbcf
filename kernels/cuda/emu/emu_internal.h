// State emu.cpp and emu_runtime.cpp share.
#pragma once
#include <mutex>

#include "cuda_runtime.h"

namespace rjemu {
extern std::mutex mu;          // one launch or runtime call at a time
extern cudaError_t last_err;   // cudaGetLastError's
extern char fail_msg[512];     // what the last launch failure was
}  // namespace rjemu
