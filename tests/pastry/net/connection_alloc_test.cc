// What one Connection costs per frame, counted: heap allocations on the
// loop's thread while it reads a burst of frames or writes a queue of them,
// and the frames' placement (in place in the read buffer, word-aligned for
// Cap'n Proto). A binary of its own: it replaces the global operator new to
// count.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/net/connection.h"
#include "tests/count_allocations.h"

namespace peter::pastry::net {
namespace {

// A frame of one segment of `words` words, each byte `fill`.
std::string RawFrame(uint32_t words, char fill) {
  std::string out(8, '\0');
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>(words >> (8 * i));
  return out + std::string(words * 8, fill);
}

class CountingOwner : public ConnectionOwner {
 public:
  void OnConnected(Connection&) override {}
  void OnConnectFailed(Connection&, const std::error_code&) override {}
  void OnHandshakeFailed(Connection&, std::optional<AuthFailure>, const std::string&) override {}
  void OnFrame(Connection&, std::string_view frame) override {
    if (reinterpret_cast<uintptr_t>(frame.data()) % 8 != 0) ++unaligned;
    ++frames;
    received.append(frame);
  }
  void OnPeerRefused(Connection&, AuthFailure, const std::string&) override {}
  void OnFramingError(Connection&, const absl::Status&) override { ++framing_errors; }
  void OnReceiveLimit(Connection&, size_t) override {}
  void OnTruncated(Connection&, size_t) override {}
  void OnClosed(Connection&, bool, const std::string&) override { closed = true; }

  size_t frames = 0;
  std::string received;  // the frames back to back
  int unaligned = 0;
  int framing_errors = 0;
  bool closed = false;
};

// An accepted Connection on loopback and the raw peer socket it talks to;
// the loop runs on the test's thread.
class ConnectionAllocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    peer_.connect(acceptor.local_endpoint());
    conn_ = std::make_shared<Connection>(io_, owner_, 1, wire::FrameLimits{}, nullptr, &totals_);
    conn_->Accept(acceptor.accept());
    for (int i = 0; i < 200; ++i) frames_.push_back(RawFrame(8, static_cast<char>('a' + i % 26)));
    owner_.received.reserve(64 << 10);
  }
  // Its pending handlers are destroyed with the loop, never run.
  void TearDown() override { conn_->Close("test over"); }

  // Runs the loop until `done` or 5 s.
  template <typename F>
  bool RunUntil(F done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      io_.run_one_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  asio::io_context io_;
  asio::ip::tcp::socket peer_{io_};
  CountingOwner owner_;
  ConnectionTotals totals_;
  std::shared_ptr<Connection> conn_;
  std::vector<std::string> frames_;
};

std::string Concat(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) out += parts[i];
  return out;
}

// 200 frames that arrive in one read are handed on in place: no allocation
// per frame (a copy of each into its own string cost one each).
TEST_F(ConnectionAllocTest, ManyFramesInOneReadAllocateNothingPerFrame) {
  const std::string burst = Concat(frames_, 0, frames_.size());
  ASSERT_LT(burst.size(), 16u * 1024);  // one read's worth
  asio::write(peer_, asio::buffer(burst));
  const uint64_t before = allocations;
  const uint64_t reads = totals_.reads;
  ASSERT_TRUE(RunUntil([&] { return owner_.frames == frames_.size(); }));
  EXPECT_LE(allocations - before, 4u) << "over " << totals_.reads - reads << " reads";
  EXPECT_EQ(owner_.received, burst);
  EXPECT_EQ(owner_.unaligned, 0);
}

// A frame cut by the end of a read is completed from the next; the frames
// after it in that read are still word-aligned (decoded in place, not
// copied to an aligned buffer first), and all arrive intact.
TEST_F(ConnectionAllocTest, FrameSplitAcrossReadsKeepsTheRestAligned) {
  const std::string stream = Concat(frames_, 0, frames_.size());
  const size_t cut = frames_[0].size() + 3;
  asio::write(peer_, asio::buffer(stream.data(), cut));
  ASSERT_TRUE(RunUntil([&] { return owner_.frames == 1; }));
  asio::write(peer_, asio::buffer(stream.data() + cut, stream.size() - cut));
  ASSERT_TRUE(RunUntil([&] { return owner_.frames == frames_.size(); }));
  EXPECT_EQ(owner_.received, stream);
  EXPECT_EQ(owner_.unaligned, 0);
  EXPECT_EQ(owner_.framing_errors, 0);
  EXPECT_FALSE(owner_.closed);
}

// Writing a queue of frames in one gathered write allocates nothing per
// frame or per write (the buffer list was a vector built and copied per
// write).
TEST_F(ConnectionAllocTest, GatheredWriteAllocatesNothing) {
  std::string warm = frames_[0];
  ASSERT_TRUE(conn_->Enqueue(std::move(warm), 1 << 20));  // asio's operations, once
  ASSERT_TRUE(RunUntil([&] { return totals_.queued_bytes == 0; }));
  const uint64_t writes = totals_.writes;
  std::vector<std::string> batch(frames_.begin(), frames_.begin() + 64);
  size_t bytes = 0;
  for (std::string& f : batch) {
    bytes += f.size();
    ASSERT_TRUE(conn_->Enqueue(std::move(f), 1 << 20));
  }
  const uint64_t before = allocations;
  ASSERT_TRUE(RunUntil([&] { return totals_.queued_bytes == 0; }));
  EXPECT_EQ(allocations - before, 0u);
  EXPECT_EQ(totals_.writes - writes, 1u);
  std::string got(frames_[0].size() + bytes, '\0');
  asio::read(peer_, asio::buffer(got));
  EXPECT_EQ(got, frames_[0] + Concat(frames_, 0, 64));
}

}  // namespace
}  // namespace peter::pastry::net
