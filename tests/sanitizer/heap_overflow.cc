// Reads one element past a heap array: AddressSanitizer must stop the
// program (tests/sanitizer/CMakeLists.txt).
#include <cstdio>
#include <cstdlib>

int main(int argc, char**) {
  int* values = new int[4]{1, 2, 3, 4};
  // argc + 3 is 4 when run without arguments; the compiler cannot see it.
  int past_end = values[argc + 3];
  std::printf("read %d past the end: the sanitizer did not stop us\n", past_end);
  delete[] values;
  return 0;
}
