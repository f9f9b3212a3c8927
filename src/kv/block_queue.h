// An intrusive doubly linked FIFO of block ids (private to src/kv). O(1) push_back, pop_front and removal
// from the middle: a cached block that is hit while it waits for eviction leaves its queue without a search.
// Callers (BlockPool) guarantee the preconditions: ids in range, pushed only when absent, removed only when present.
#pragma once

#include <cstdint>
#include <vector>

namespace pagedattn::kv {

class BlockQueue {
 public:
  explicit BlockQueue(int32_t capacity)
      : prev_(static_cast<size_t>(capacity) + 1, kUnlinked), next_(static_cast<size_t>(capacity) + 1, kUnlinked) {
    prev_[sentinel()] = next_[sentinel()] = sentinel();
  }

  int32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool contains(int32_t id) const { return prev_[static_cast<size_t>(id)] != kUnlinked; }
  int32_t front() const { return next_[sentinel()]; }  // the one queued longest ago

  void push_back(int32_t id) {
    const int32_t last = prev_[sentinel()];
    link(last, id);
    link(id, sentinel());
    ++size_;
  }

  int32_t pop_front() {
    const int32_t id = front();
    remove(id);
    return id;
  }

  void remove(int32_t id) {
    link(prev_[static_cast<size_t>(id)], next_[static_cast<size_t>(id)]);
    prev_[static_cast<size_t>(id)] = next_[static_cast<size_t>(id)] = kUnlinked;
    --size_;
  }

  // Visits the ids from front to back.
  template <class F>
  void for_each(F&& visit) const {
    for (int32_t id = front(); id != sentinel(); id = next_[static_cast<size_t>(id)]) visit(id);
  }

 private:
  static constexpr int32_t kUnlinked = -1;
  int32_t sentinel() const { return static_cast<int32_t>(prev_.size()) - 1; }
  void link(int32_t a, int32_t b) {
    next_[static_cast<size_t>(a)] = b;
    prev_[static_cast<size_t>(b)] = a;
  }

  std::vector<int32_t> prev_;
  std::vector<int32_t> next_;
  int32_t size_ = 0;
};

}  // namespace pagedattn::kv
