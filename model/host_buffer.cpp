#include "host_buffer.h"

#include <torch/cuda.h>
#include <torch/types.h>

#include "error.h"

namespace ssd {

struct HostBuffer::Impl {
  torch::Tensor block;   // owns the memory (LibTorch's pinned allocator, or its CPU one)
  bool pinned = false;
};

HostBuffer::HostBuffer(size_t size, bool pinned) : impl_(std::make_unique<Impl>()) {
  if (pinned && !torch::cuda::is_available())
    throw Error("page-locked host memory needs a CUDA device, and none is available");
  try {
    impl_->block = torch::empty({static_cast<int64_t>(size)},
                                torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(pinned));
  } catch (const c10::Error& e) {
    throw Error("could not allocate " + std::to_string(size) + " bytes of " + (pinned ? "page-locked " : "") +
                "host memory: " + e.what_without_backtrace());
  }
  impl_->pinned = pinned;
}

std::unique_ptr<HostBuffer> HostBuffer::pinned_if_possible(size_t size, std::string* why_not) {
  try {
    return std::make_unique<HostBuffer>(size, true);
  } catch (const Error& e) {
    if (why_not) *why_not = e.what();
  }
  return std::make_unique<HostBuffer>(size, false);
}

HostBuffer::~HostBuffer() = default;

uint8_t* HostBuffer::data() const { return impl_->block.data_ptr<uint8_t>(); }
size_t HostBuffer::size() const { return static_cast<size_t>(impl_->block.numel()); }
bool HostBuffer::pinned() const { return impl_->pinned; }

}  // namespace ssd
