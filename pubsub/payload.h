// A message's payload as Scribe and the Redis gateway hold it: immutable
// bytes in one heap block (a reference count, the size, the bytes), shared
// by copying the handle. A PUBLISH's payload is made once, where the
// gateway takes it from the parser, and the same block is then held by the
// publisher's pending publish (for resends), the PublishMsg, the root's
// replay buffer, the DataMsgs to children and the replicas' StoredMessages:
// no copy of the bytes and no allocation between them.
//
// The count is atomic, so handles to one block may be copied and dropped
// on different threads; the bytes are never written after construction.
// An empty payload holds no block. Private to Peter (not in include/): the
// public API takes std::string and makes one.
#ifndef PETER_PUBSUB_PAYLOAD_H_
#define PETER_PUBSUB_PAYLOAD_H_

#include <atomic>
#include <cstddef>
#include <cstring>
#include <new>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace peter::pubsub {

class Payload {
 public:
  Payload() = default;
  // Copies `bytes` into a new block (one allocation; none when empty).
  // Implicit, as std::string's constructors are, so a literal or a string
  // can be passed where a Payload is taken.
  Payload(std::string_view bytes) {  // NOLINT(google-explicit-constructor)
    if (bytes.empty()) return;
    void* block = ::operator new(sizeof(Rep) + bytes.size());
    rep_ = new (block) Rep{{1}, bytes.size()};
    std::memcpy(reinterpret_cast<char*>(rep_ + 1), bytes.data(), bytes.size());
  }
  Payload(const char* bytes) : Payload(std::string_view(bytes)) {}  // NOLINT
  Payload(const std::string& bytes) : Payload(std::string_view(bytes)) {}  // NOLINT

  // Shares the block.
  Payload(const Payload& other) noexcept : rep_(other.rep_) {
    if (rep_ != nullptr) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  Payload(Payload&& other) noexcept : rep_(std::exchange(other.rep_, nullptr)) {}
  Payload& operator=(const Payload& other) noexcept {
    Payload(other).swap(*this);
    return *this;
  }
  Payload& operator=(Payload&& other) noexcept {
    Payload(std::move(other)).swap(*this);
    return *this;
  }
  ~Payload() { Release(); }

  void swap(Payload& other) noexcept { std::swap(rep_, other.rep_); }
  // Drops this handle's share; the payload is then empty.
  void clear() noexcept {
    Release();
    rep_ = nullptr;
  }

  const char* data() const { return rep_ == nullptr ? "" : reinterpret_cast<const char*>(rep_ + 1); }
  size_t size() const { return rep_ == nullptr ? 0 : rep_->size; }
  bool empty() const { return rep_ == nullptr; }
  std::string_view view() const { return {data(), size()}; }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)

  // The block's address, only to ask for it ahead (PrefetchBlock): a
  // handle about to be dropped or sized whose block has long left the cache
  // (the oldest message of a replay buffer, TopicState::PrefetchReplay).
  const void* block() const { return rep_; }
  // Asks the processor to load the header (count and size) of the block at
  // `block` without waiting. `block` may have been freed since (a
  // prefetch reads nothing and cannot fault).
  static void PrefetchBlock(const void* block) {
    if (block != nullptr) __builtin_prefetch(block, 1);
  }

  // Handles to this block (1 for a lone one, 0 when empty): for tests.
  long use_count() const {
    return rep_ == nullptr ? 0 : static_cast<long>(rep_->refs.load(std::memory_order_relaxed));
  }

  friend bool operator==(const Payload& a, std::string_view b) { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& os, const Payload& p) { return os << p.view(); }

 private:
  struct Rep {
    std::atomic<size_t> refs;
    size_t size;
  };
  static_assert(alignof(Rep) <= alignof(std::max_align_t));

  void Release() noexcept {
    if (rep_ != nullptr && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      rep_->~Rep();
      ::operator delete(rep_);
    }
  }

  Rep* rep_ = nullptr;
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_PAYLOAD_H_
