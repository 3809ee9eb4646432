// Overflows a signed int: UndefinedBehaviorSanitizer, built with
// -fno-sanitize-recover, must stop the program
// (tests/sanitizer/CMakeLists.txt).
#include <climits>
#include <cstdio>

int main(int argc, char**) {
  volatile int big = INT_MAX - 1 + argc;  // INT_MAX when run without arguments
  int sum = big + argc;
  std::printf("INT_MAX + 1 = %d: the sanitizer did not stop us\n", sum);
  return 0;
}
