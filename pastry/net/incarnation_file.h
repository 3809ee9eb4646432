// The runtime's node incarnation (NodeHandle::incarnation), optionally kept
// in a file so that it grows across restarts even if the wall clock steps
// back between them (docs/design.md, "Incarnations").
#ifndef PETER_PASTRY_NET_INCARNATION_FILE_H_
#define PETER_PASTRY_NET_INCARNATION_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace peter::pastry::net {

// The incarnation of a run starting at `now` without a file: microseconds
// since the Unix epoch (at least 1, as 0 means unknown).
uint64_t ClockIncarnation(absl::Time now);

// The incarnation of a run starting at `now` with the file at `path`:
// max(ClockIncarnation(now), the file's incarnation + 1), written back to
// the file before it is returned (to a temporary file beside it, synced, then
// renamed over it), so the next run, whatever its clock says, gets a larger
// one. A missing file counts as none. The file holds one decimal number and
// a newline; anything else is InvalidArgument naming the file (nothing is
// written then: the operator decides), and a file that cannot be read or
// written is the I/O error, naming the file.
absl::StatusOr<uint64_t> NextIncarnation(const std::string& path, absl::Time now);

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_INCARNATION_FILE_H_
