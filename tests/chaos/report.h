// The chaos soak's summary on stdout: the run, the faults (one line each and
// repair times by kind), publishes and deliveries by mode, and the verdict.
#ifndef PETER_TESTS_CHAOS_REPORT_H_
#define PETER_TESTS_CHAOS_REPORT_H_

#include "tests/chaos/soak.h"

namespace peter::chaos {

void PrintReport(const SoakOptions& options, const SoakResult& result);

}  // namespace peter::chaos

#endif  // PETER_TESTS_CHAOS_REPORT_H_
