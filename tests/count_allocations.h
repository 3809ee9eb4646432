// Counts heap allocations: replaces the global operator new. Include it in
// exactly one source file of a test binary of its own (every allocation of
// the binary goes through it). `allocations` counts this thread's calls,
// `allocated_bytes` the bytes they asked for.
#ifndef PETER_TESTS_COUNT_ALLOCATIONS_H_
#define PETER_TESTS_COUNT_ALLOCATIONS_H_

#include <cstdint>
#include <cstdlib>
#include <new>

namespace {
thread_local uint64_t allocations = 0;
thread_local uint64_t allocated_bytes = 0;
}  // namespace

void* operator new(size_t n) {
  ++allocations;
  allocated_bytes += n;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC 12 inlines them into callers in this file that got their
// pointer from operator new and then warns that free() is given a pointer
// from a mismatched allocation function (-Wmismatched-new-delete), which is
// false here: this operator new allocates with malloc.
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

#endif  // PETER_TESTS_COUNT_ALLOCATIONS_H_
