// Network namespaces for integration tests (root only): one "hub"
// namespace holding a bridge, and one namespace per host, each joined to the
// bridge by a veth pair and given its own address 10.77.0.<i+2>/24. Every
// address exists only inside these namespaces; the calling thread can enter
// the hub (Enter) to reach them. Everything is deleted by the destructor.
#ifndef PETER_TESTS_INTEGRATION_NETNS_LAB_H_
#define PETER_TESTS_INTEGRATION_NETNS_LAB_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace peter::integration {

class NetnsLab {
 public:
  // Empty string if namespaces can be made here, else why not (not root, no
  // `ip` command).
  static std::string Unsupported();

  // Creates the hub and `hosts` host namespaces.
  static absl::StatusOr<std::unique_ptr<NetnsLab>> Create(int hosts);
  ~NetnsLab();  // Leaves the hub if entered; deletes every namespace.

  // Moves the calling thread into the hub namespace (until the destructor or
  // Leave), so its sockets reach the hosts' addresses.
  absl::Status Enter();
  void Leave();

  int hosts() const { return static_cast<int>(names_.size()); }
  // The command prefix that runs a program on host i.
  std::vector<std::string> Prefix(int i) const;
  // Host i's address.
  std::string Address(int i) const;
  // Cuts host i off the bridge (its veth's hub end down: packets to and
  // from it vanish, as in a network partition) or connects it again.
  absl::Status SetConnected(int i, bool connected);
  // Cuts hosts i and j off each other only (an `unreachable` route to the
  // other's address in each namespace: new connections fail at once with
  // EHOSTUNREACH, what an established one sends is lost) while both keep
  // every other path; or lifts that cut.
  absl::Status SetReachable(int i, int j, bool reachable);
  // The address of the hub's end of the bridge.
  std::string HubAddress() const;

 private:
  NetnsLab() = default;
  absl::Status Run(const std::vector<std::string>& args);

  std::string hub_;
  std::vector<std::string> names_;
  int saved_ns_fd_ = -1;
};

}  // namespace peter::integration

#endif  // PETER_TESTS_INTEGRATION_NETNS_LAB_H_
