// Loses the only pointer to a heap block: LeakSanitizer (part of ASan) must
// fail the program at exit (tests/sanitizer/CMakeLists.txt).
#include <cstdio>
#include <cstdlib>

int main() {
  void* volatile block = std::malloc(77);
  std::printf("allocated %p\n", block);
  block = nullptr;
  return 0;
}
