// A two-node fake cluster with a gateway on each node, for client libraries'
// tests in other languages (tests/pubsub/resp/node). Prints
// "PORTS <a> <b>" on stdout, then serves until its standard input closes.
// Usage: resp_test_server [password]
#include <cstdio>
#include <iostream>
#include <string>

#include "pubsub/resp/gateway.h"
#include "tests/pubsub/resp/fake_cluster.h"

int main(int argc, char** argv) {
  peter::resp::testing::FakeCluster cluster;
  peter::resp::GatewayOptions options;
  if (argc > 1) options.requirepass = argv[1];
  auto a = peter::resp::Gateway::Start(cluster.AddNode(), options);
  auto b = peter::resp::Gateway::Start(cluster.AddNode(), options);
  if (!a.ok() || !b.ok()) {
    std::cerr << "cannot start: " << (a.ok() ? b.status() : a.status()) << "\n";
    return 1;
  }
  std::cout << "PORTS " << (*a)->port() << " " << (*b)->port() << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  (*a)->Stop();
  (*b)->Stop();
  return 0;
}
