// A block of host memory for video frames, page-locked ("pinned") when asked: the GPU's copy
// engines read pinned memory directly, so a frame that lives in it is uploaded asynchronously
// with no staging copy (FrameView::pinned). LibTorch-free: the GStreamer elements' buffer pool
// allocates its memory through this class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace ssd {

class HostBuffer {
 public:
  // `size` bytes. pinned: page-locked through LibTorch's CUDA host allocator (throws ssd::Error
  // when no CUDA device is available); otherwise ordinary memory.
  HostBuffer(size_t size, bool pinned);
  ~HostBuffer();
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  uint8_t* data() const;
  size_t size() const;
  bool pinned() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ssd
