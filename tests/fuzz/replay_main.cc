// Replays a fuzz target's seeds and corpus as an ordinary test:
//   <target>_replay CORPUS_DIR             run every file in CORPUS_DIR
//   <target>_replay --write-seeds DIR      write the seeds there (run-fuzz)
// Exits non-zero (abort) if an input crashes the target.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "tests/fuzz/fuzz_target.h"

namespace peter::fuzz {
void Fail(const char* what) {
  std::fprintf(stderr, "fuzz target failed: %s\n", what);
  std::abort();
}
}  // namespace peter::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  using peter::fuzz::FuzzOne;
  if (argc == 3 && std::string(argv[1]) == "--write-seeds") {
    fs::create_directories(argv[2]);
    int i = 0;
    for (const std::string& seed : peter::fuzz::FuzzSeeds()) {
      std::ofstream(fs::path(argv[2]) / ("seed-" + std::to_string(i++)), std::ios::binary)
          << seed;
    }
    std::printf("wrote %d seeds to %s\n", i, argv[2]);
    return 0;
  }
  int runs = 0;
  for (const std::string& seed : peter::fuzz::FuzzSeeds()) {
    FuzzOne(seed);
    ++runs;
  }
  if (argc == 2 && fs::is_directory(argv[1])) {
    for (const fs::directory_entry& entry : fs::directory_iterator(argv[1])) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      FuzzOne(data);
      ++runs;
    }
  }
  std::printf("replayed %d inputs\n", runs);
  return 0;
}
