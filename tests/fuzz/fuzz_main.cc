// libFuzzer's entry point for a target of fuzz_target.h.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/fuzz/fuzz_target.h"

namespace peter::fuzz {
void Fail(const char* what) {
  std::fprintf(stderr, "fuzz target failed: %s\n", what);
  std::abort();
}
}  // namespace peter::fuzz

// PETER_FUZZ_WRITE_SEEDS=DIR: write the target's seeds into DIR and exit
// (tools/run-fuzz starts every run from them).
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  const char* dir = std::getenv("PETER_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return 0;
  std::filesystem::create_directories(dir);
  int i = 0;
  for (const std::string& seed : peter::fuzz::FuzzSeeds()) {
    std::ofstream(std::filesystem::path(dir) / ("seed-" + std::to_string(i++)),
                  std::ios::binary)
        << seed;
  }
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  peter::fuzz::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
